using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Benchmarks.Analyzers;

/// <summary>
/// Issue 7's cost goal: the HmmEmu analyzers add at most 25% to the build of a ~20 000-line driver corpus.
/// <c>Compile</c> (the baseline) binds and emits a fresh compilation of the corpus, as <c>csc</c> does;
/// <c>CompileAndAnalyze</c> runs every HmmEmu analyzer over the same fresh compilation (concurrently, as the build
/// does) and then emits it. Parsing is done once in setup: it is the same in both and the analyzers do not add to it.
/// </summary>
[MemoryDiagnoser]
public class AnalyzerCostBenchmarks
{
    private DriverCorpus _corpus = null!;

    /// <summary>How many copies of the three sample drivers the corpus holds (4 ≈ 22 000 lines).</summary>
    [Params(4)]
    public int Copies { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _corpus = DriverCorpus.Generate(Copies);
        Console.WriteLine($"// corpus: {_corpus.Trees.Length} files, {_corpus.Lines} lines, {DriverCorpus.Analyzers.Length} analyzers");
        // Three warm-up runs with the analyzers' own timing on; the last run's times are printed (the driver's own
        // accounting: the first analyzer to ask for a method's operation tree or flow graph is charged for building it).
        for (int run = 1; run <= 3; run++)
        {
            var timed = _corpus.NewCompilation().WithAnalyzers(DriverCorpus.Analyzers, Options(logTime: true));
            var diagnostics = timed.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
            if (!diagnostics.IsEmpty)
                throw new InvalidOperationException($"The corpus is clean code; the analyzers reported {diagnostics.Length}: {diagnostics[0]}");
            if (run < 3)
                continue;
            foreach (var analyzer in DriverCorpus.Analyzers)
            {
                var info = timed.GetAnalyzerTelemetryInfoAsync(analyzer, CancellationToken.None).GetAwaiter().GetResult();
                Console.WriteLine($"// {analyzer.GetType().Name}: {info.ExecutionTime.TotalMilliseconds:F0} ms");
            }
        }
    }

    [Benchmark(Baseline = true)]
    public long Compile() => Emit(_corpus.NewCompilation());

    [Benchmark]
    public long CompileAndAnalyze()
    {
        var compilation = _corpus.NewCompilation();
        var diagnostics = compilation.WithAnalyzers(DriverCorpus.Analyzers, Options(logTime: false)).GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        return Emit(compilation) + diagnostics.Length;
    }

    /// <summary>
    /// What any analyzer that asks for method operation trees pays: one analyzer that registers an operation-block action
    /// and does nothing in it. The difference from <see cref="Compile"/> is the compiler binding every method body a
    /// second time for the semantic model, separately from emit.
    /// </summary>
    [Benchmark]
    public long CompileAndEmptyOperationAnalyzer()
    {
        var compilation = _corpus.NewCompilation();
        var diagnostics = compilation.WithAnalyzers([new EmptyOperationBlockAnalyzer()], Options(logTime: false)).GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        return Emit(compilation) + diagnostics.Length;
    }

    private static CompilationWithAnalyzersOptions Options(bool logTime) =>
        new(new AnalyzerOptions([]), onAnalyzerException: null, concurrentAnalysis: true, logAnalyzerExecutionTime: logTime);

    private static long Emit(Microsoft.CodeAnalysis.Compilation compilation)
    {
        using var stream = new MemoryStream();
        var result = compilation.Emit(stream);
        if (!result.Success)
            throw new InvalidOperationException("The corpus no longer compiles: " + result.Diagnostics.First());
        return stream.Length;
    }
}

/// <summary>
/// An analyzer that asks for every method's operation block and does nothing with it. It is handed to
/// <c>WithAnalyzers</c> directly, never loaded by a compiler, so it has no [DiagnosticAnalyzer] attribute.
/// </summary>
#pragma warning disable RS1001, RS2008 // a measuring stub used in-process only: never shipped, never loaded by a compiler
internal sealed class EmptyOperationBlockAnalyzer : DiagnosticAnalyzer
{
    private static readonly DiagnosticDescriptor s_never = new("BENCH001", "never", "never", "Bench", DiagnosticSeverity.Hidden, isEnabledByDefault: true);

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = [s_never];

    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterOperationBlockAction(_ => { });
    }
}
#pragma warning restore RS1001, RS2008
