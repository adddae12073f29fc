using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers.Tests;

/// <summary>Every analyzer of HmmEmu.Analyzers, and a way to run them all over real sources.</summary>
internal static class AllAnalyzers
{
    /// <summary>One instance of each analyzer type in the HmmEmu.Analyzers assembly, in name order.</summary>
    public static ImmutableArray<DiagnosticAnalyzer> Instances { get; } = typeof(HMM001BlockingInNonBlockableInvalidateAnalyzer).Assembly
        .GetTypes()
        .Where(t => !t.IsAbstract && typeof(DiagnosticAnalyzer).IsAssignableFrom(t)
            && t.GetCustomAttributes(typeof(DiagnosticAnalyzerAttribute), inherit: false).Length > 0)
        .OrderBy(t => t.Name, StringComparer.Ordinal)
        .Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!)
        .ToImmutableArray();

    /// <summary>
    /// Compiles <paramref name="trees"/> as assembly <paramref name="assemblyName"/> against <paramref name="references"/>,
    /// asserts it compiles without errors, and returns every analyzer diagnostic (compilation-end ones included), ordered
    /// by file, line and id.
    /// </summary>
    public static async Task<List<Diagnostic>> AnalyzeAsync(string assemblyName, IEnumerable<SyntaxTree> trees, IEnumerable<MetadataReference> references)
    {
        var compilation = CSharpCompilation.Create(
            assemblyName,
            trees,
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));

        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, $"{assemblyName} does not compile:\n{string.Join("\n", errors.Take(20))}");

        var diagnostics = await compilation.WithAnalyzers(Instances).GetAnalyzerDiagnosticsAsync();
        return diagnostics
            .OrderBy(d => d.Location.SourceTree?.FilePath, StringComparer.Ordinal)
            .ThenBy(d => d.Location.GetLineSpan().StartLinePosition.Line)
            .ThenBy(d => d.Id, StringComparer.Ordinal)
            .ToList();
    }
}
