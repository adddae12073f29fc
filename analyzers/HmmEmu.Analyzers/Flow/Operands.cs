using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers.Flow;

/// <summary>Operand stripping and constant tests that the dataflow rules apply to a graph's operations.</summary>
internal static class Operands
{
    /// <summary><paramref name="operation"/> with its (implicit or explicit) conversions removed.</summary>
    public static IOperation Strip(IOperation operation)
    {
        while (operation is IConversionOperation c)
            operation = c.Operand;
        return operation;
    }

    /// <summary>Whether <paramref name="operation"/> is the constant <c>null</c>.</summary>
    public static bool IsNullConstant(IOperation operation) => operation.ConstantValue is { HasValue: true, Value: null };

    /// <summary>Whether <paramref name="operation"/>, conversions removed, is an integer constant equal to zero.</summary>
    public static bool IsZero(IOperation operation) =>
        Strip(operation).ConstantValue is { HasValue: true, Value: { } v } && ToInt64(v) == 0;

    /// <summary>An integer constant as a <see cref="long"/> (a <see cref="ulong"/> reinterpreted); -1 for anything else.</summary>
    public static long ToInt64(object value) => value switch
    {
        uint u => u,
        ulong ul => unchecked((long)ul),
        int i => i,
        long l => l,
        ushort us => us,
        short sh => sh,
        byte b => b,
        sbyte sb => sb,
        _ => -1,
    };
}
