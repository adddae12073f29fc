using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace HmmEmu.Analyzers.Flow;

/// <summary>Names and locations used in diagnostic messages.</summary>
internal static class Describe
{
    /// <summary>The category of every HmmEmu rule.</summary>
    public const string Category = "HmmEmu.Locking";

    /// <summary>"Type.Member" for a called member, or "lock statement" for the lowered Monitor.Enter of a <c>lock</c>.</summary>
    public static string Callee(in FlowCall call)
    {
        if (LockStatementOf(call.Operation) is not null)
            return "lock statement";
        return call.Member is null ? call.Operation.Syntax.ToString() : $"{call.Member.ContainingType?.Name}.{call.Member.Name}";
    }

    /// <summary>The location to report a call at: the <c>lock (x)</c> header for a lock statement, else the call.</summary>
    public static Location Where(IOperation operation)
    {
        var syntax = operation.Syntax;
        if (LockStatementOf(operation) is { } lockStatement)
            return Location.Create(syntax.SyntaxTree, Microsoft.CodeAnalysis.Text.TextSpan.FromBounds(lockStatement.LockKeyword.SpanStart, lockStatement.CloseParenToken.Span.End));
        return syntax.GetLocation();
    }

    // The lock statement whose lowering (Monitor.Enter on the locked expression) this implicit operation is.
    private static LockStatementSyntax? LockStatementOf(IOperation operation)
    {
        if (!operation.IsImplicit)
            return null;
        var syntax = operation.Syntax;
        if (syntax is LockStatementSyntax direct)
            return direct;
        return syntax.Parent is LockStatementSyntax parent && parent.Expression == syntax ? parent : null;
    }

    /// <summary>The name of a lock key as written: the field, property, local or parameter name.</summary>
    public static string Lock(ISymbol key) => key is ITypeSymbol ? "this" : key.Name;
}
