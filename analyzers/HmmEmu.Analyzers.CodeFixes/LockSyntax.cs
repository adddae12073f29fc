using System;
using System.Linq;
using System.Threading;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace HmmEmu.Analyzers.CodeFixes;

/// <summary>
/// A lock as the code fixes name it: the symbol of the locked expression (field, property, local, parameter; the type
/// for <c>this</c>), and for an <c>[AcquiresLock(nameof(X))]</c> helper the member <c>X</c> of that receiver.
/// </summary>
internal readonly struct LockKey : IEquatable<LockKey>
{
    public LockKey(ISymbol symbol, string? member)
    {
        Symbol = symbol;
        Member = member;
    }

    public ISymbol Symbol { get; }

    public string? Member { get; }

    public bool Equals(LockKey other) => SymbolEqualityComparer.Default.Equals(Symbol, other.Symbol) && Member == other.Member;

    public override bool Equals(object? obj) => obj is LockKey other && Equals(other);

    public override int GetHashCode() => SymbolEqualityComparer.Default.GetHashCode(Symbol) ^ (Member?.GetHashCode() ?? 0);
}

/// <summary>A call that takes or drops a lock, as the <see cref="CalleeFacts"/> of its target say.</summary>
internal readonly struct LockCall
{
    public LockCall(InvocationExpressionSyntax syntax, IMethodSymbol method, LockEffect effect, LockKey key)
    {
        Syntax = syntax;
        Method = method;
        Effect = effect;
        Key = key;
    }

    public InvocationExpressionSyntax Syntax { get; }

    public IMethodSymbol Method { get; }

    public LockEffect Effect { get; }

    public LockKey Key { get; }
}

/// <summary>Recognises lock calls in syntax and writes the release that matches an acquisition.</summary>
internal static class LockSyntax
{
    /// <summary>The lock effect and lock of <paramref name="expression"/> if it is a call with one.</summary>
    public static LockCall? Classify(ExpressionSyntax? expression, SemanticModel model, KnownSymbols known, CancellationToken cancellation)
    {
        if (Unwrap(expression) is not InvocationExpressionSyntax invocation)
            return null;
        if (model.GetSymbolInfo(invocation, cancellation).Symbol is not IMethodSymbol method)
            return null;
        var facts = known.FactsOf(method);
        if (facts.Lock == LockEffect.None)
            return null;
        var key = KeyOf(invocation, method.ReducedFrom ?? method, facts.LockTarget, model, cancellation);
        return key is null ? null : new LockCall(invocation, method, facts.Lock, key.Value);
    }

    /// <summary>The lock call that <paramref name="statement"/> consists of (<c>x.Lock();</c>), if it is one.</summary>
    public static LockCall? OfStatement(StatementSyntax statement, SemanticModel model, KnownSymbols known, CancellationToken cancellation) =>
        statement is ExpressionStatementSyntax e ? Classify(e.Expression, model, known, cancellation) : null;

    /// <summary>
    /// <c>x.Unlock();</c> (or <c>Monitor.Exit(o);</c>, <c>x.UpWrite();</c>, ...) for the lock that
    /// <paramref name="acquire"/> took; null if no single release method pairs with it.
    /// </summary>
    public static ExpressionStatementSyntax? ReleaseFor(LockCall acquire, KnownSymbols known)
    {
        var method = (acquire.Method.ReducedFrom ?? acquire.Method).OriginalDefinition;
        var target = known.FactsOf(method).LockTarget;
        var targetParameter = target is null ? null : method.Parameters.FirstOrDefault(p => p.Name == target);
        var candidates = method.ContainingType.GetMembers().OfType<IMethodSymbol>()
            .Where(m => m.IsStatic == method.IsStatic && m.MethodKind == MethodKind.Ordinary)
            .Where(m => known.FactsOf(m) is { Lock: LockEffect.Release } f && f.LockTarget == target)
            .Where(m => targetParameter is null ? m.Parameters.Length == 0 : m.Parameters.Length == 1 && m.Parameters[0].Name == target)
            .ToList();
        string? paired = PairedName(method.Name);
        var release = candidates.FirstOrDefault(m => m.Name == paired) ?? (candidates.Count == 1 ? candidates[0] : null);
        if (release is null)
            return null;

        ExpressionSyntax callee;
        switch (acquire.Syntax.Expression)
        {
            case MemberAccessExpressionSyntax access:
                callee = access.WithName(SyntaxFactory.IdentifierName(release.Name)).WithoutTrivia();
                break;
            case IdentifierNameSyntax:
                callee = SyntaxFactory.IdentifierName(release.Name);
                break;
            default:
                return null;
        }
        var arguments = SyntaxFactory.ArgumentList();
        if (targetParameter is not null)
        {
            var argument = ArgumentFor(acquire.Syntax, method, targetParameter);
            if (argument is null)
                return null;
            arguments = arguments.AddArguments(SyntaxFactory.Argument(argument.Expression.WithoutTrivia()));
        }
        return SyntaxFactory.ExpressionStatement(SyntaxFactory.InvocationExpression(callee, arguments));
    }

    /// <summary>Whether the <c>Monitor.Enter(o, ref taken)</c> form: its release depends on a flag.</summary>
    public static bool HasTakenFlag(LockCall call) =>
        call.Method.Parameters.Any(p => p.RefKind == RefKind.Ref && p.Type.SpecialType == SpecialType.System_Boolean);

    /// <summary><paramref name="expression"/> without parentheses and null-forgiving operators.</summary>
    public static ExpressionSyntax? Unwrap(ExpressionSyntax? expression)
    {
        while (true)
        {
            switch (expression)
            {
                case ParenthesizedExpressionSyntax p:
                    expression = p.Expression;
                    break;
                case PostfixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.SuppressNullableWarningExpression } bang:
                    expression = bang.Operand;
                    break;
                default:
                    return expression;
            }
        }
    }

    /// <summary>Whether <paramref name="node"/> is a lambda, anonymous method or local function (code that runs elsewhere).</summary>
    public static bool IsFunction(SyntaxNode node) => node is AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax;

    // Lock -> Unlock, LockIrqSave -> UnlockIrqRestore, DownRead -> UpRead, DownWriteNested -> UpWrite, Enter -> Exit,
    // EnterReadLock -> ExitReadLock; a Try prefix pairs like the blocking form.
    private static string PairedName(string acquire)
    {
        if (acquire.StartsWith("Try", StringComparison.Ordinal))
            acquire = acquire.Substring(3);
        if (acquire == "LockIrqSave")
            return "UnlockIrqRestore";
        if (acquire.StartsWith("Lock", StringComparison.Ordinal))
            return "Un" + char.ToLowerInvariant(acquire[0]) + acquire.Substring(1);
        if (acquire.StartsWith("Down", StringComparison.Ordinal))
            return "Up" + acquire.Substring(4).Replace("Nested", string.Empty);
        if (acquire.StartsWith("Enter", StringComparison.Ordinal))
            return "Exit" + acquire.Substring(5);
        return "Un" + acquire;
    }

    private static LockKey? KeyOf(InvocationExpressionSyntax invocation, IMethodSymbol method, string? target, SemanticModel model, CancellationToken cancellation)
    {
        var parameter = target is null ? null : method.Parameters.FirstOrDefault(p => p.Name == target);
        if (parameter is not null)
        {
            var argument = ArgumentFor(invocation, method, parameter);
            var symbol = argument is null ? null : SymbolOf(argument.Expression, model, cancellation);
            return symbol is null ? null : new LockKey(symbol, null);
        }
        ISymbol? receiver = invocation.Expression switch
        {
            MemberAccessExpressionSyntax access => SymbolOf(access.Expression, model, cancellation),
            IdentifierNameSyntax => method.ContainingType,
            _ => null,
        };
        return receiver is null ? null : new LockKey(receiver, target);
    }

    private static ISymbol? SymbolOf(ExpressionSyntax expression, SemanticModel model, CancellationToken cancellation)
    {
        var e = Unwrap(expression);
        if (e is ThisExpressionSyntax)
            return model.GetTypeInfo(e, cancellation).Type;
        return e is null ? null : model.GetSymbolInfo(e, cancellation).Symbol;
    }

    private static ArgumentSyntax? ArgumentFor(InvocationExpressionSyntax invocation, IMethodSymbol method, IParameterSymbol parameter)
    {
        var arguments = invocation.ArgumentList.Arguments;
        var named = arguments.FirstOrDefault(a => a.NameColon?.Name.Identifier.ValueText == parameter.Name);
        if (named is not null)
            return named;
        int index = method.Parameters.IndexOf(parameter);
        return index >= 0 && index < arguments.Count && arguments[index].NameColon is null ? arguments[index] : null;
    }
}
