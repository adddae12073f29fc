using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Benchmarks.Analyzers;

/// <summary>
/// A generated driver corpus for measuring what the HmmEmu analyzers cost a build: the sources of the three sample
/// drivers (mirror, GPU, RNIC; about 5 600 lines) copied <c>copies</c> times, each copy in its own namespace
/// (<c>HmmEmu.Gpu.Driver.Copy2</c>), so the corpus is real driver code with every pattern the rules look at, in the
/// proportions a driver has. Compiled against the kernel, hardware and Spec assemblies (never the original drivers).
/// </summary>
internal sealed class DriverCorpus
{
    private static readonly string[] s_drivers =
    [
        "devices/Mirror/HmmEmu.Mirror.Driver",
        "devices/Gpu/HmmEmu.Gpu.Driver",
        "devices/Rnic/HmmEmu.Rnic.Driver",
    ];

    private static readonly Regex s_fileNamespace = new(@"^namespace\s+(?<ns>[\w.]+)\s*;", RegexOptions.Multiline);

    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;

    private DriverCorpus(ImmutableArray<SyntaxTree> trees, ImmutableArray<MetadataReference> references, int lines)
    {
        Trees = trees;
        References = references;
        Lines = lines;
    }

    /// <summary>The parsed sources.</summary>
    public ImmutableArray<SyntaxTree> Trees { get; }

    /// <summary>What the corpus compiles against.</summary>
    public ImmutableArray<MetadataReference> References { get; }

    /// <summary>Source lines in the corpus.</summary>
    public int Lines { get; }

    /// <summary>Every analyzer of HmmEmu.Analyzers, one instance each.</summary>
    public static ImmutableArray<DiagnosticAnalyzer> Analyzers { get; } = typeof(HmmEmu.Analyzers.HMM001BlockingInNonBlockableInvalidateAnalyzer).Assembly
        .GetTypes()
        .Where(t => !t.IsAbstract && typeof(DiagnosticAnalyzer).IsAssignableFrom(t)
            && t.GetCustomAttributes(typeof(DiagnosticAnalyzerAttribute), inherit: false).Length > 0)
        .OrderBy(t => t.Name, StringComparer.Ordinal)
        .Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!)
        .ToImmutableArray();

    /// <summary>Reads and parses the drivers <paramref name="copies"/> times.</summary>
    public static DriverCorpus Generate(int copies)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var trees = ImmutableArray.CreateBuilder<SyntaxTree>();
        int lines = 0;
        string root = RepoRoot();
        for (int copy = 1; copy <= copies; copy++)
        {
            foreach (string driver in s_drivers)
            {
                string dir = Path.Combine(root, driver);
                foreach (string file in Directory.GetFiles(dir, "*.cs", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal))
                {
                    string relative = Path.GetRelativePath(dir, file).Replace('\\', '/');
                    if (relative.StartsWith("bin/", StringComparison.Ordinal) || relative.StartsWith("obj/", StringComparison.Ordinal))
                        continue;
                    string text = File.ReadAllText(file);
                    int n = copy;
                    text = s_fileNamespace.Replace(text, m => $"namespace {m.Groups["ns"].Value}.Copy{n};", 1);
                    lines += text.Count(c => c == '\n');
                    trees.Add(CSharpSyntaxTree.ParseText(text, parse, path: $"Copy{copy}/{driver}/{relative}"));
                }
            }
        }
        trees.Add(CSharpSyntaxTree.ParseText(ImplicitUsings, parse, path: "GlobalUsings.g.cs"));

        // The running process's trusted platform assemblies: the framework and the HmmEmu assemblies the benchmarks
        // reference, minus the drivers themselves (the corpus is their copies).
        string tpa = (string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!;
        var references = tpa.Split(Path.PathSeparator)
            .Where(p => !Path.GetFileName(p).EndsWith(".Driver.dll", StringComparison.Ordinal))
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToImmutableArray();

        var corpus = new DriverCorpus(trees.ToImmutable(), references, lines);
        var errors = corpus.NewCompilation().GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
            throw new InvalidOperationException($"The generated corpus does not compile:\n{string.Join("\n", errors.Take(10))}");
        return corpus;
    }

    /// <summary>A fresh compilation of the corpus (nothing bound yet).</summary>
    public CSharpCompilation NewCompilation() => CSharpCompilation.Create(
        "DriverCorpus",
        Trees,
        References,
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, concurrentBuild: true));

    private static string RepoRoot([CallerFilePath] string thisFile = "")
    {
        foreach (string start in new[] { Path.GetDirectoryName(thisFile)!, AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "HmmEmu.sln")))
                    return d.FullName;
            }
        }
        throw new DirectoryNotFoundException($"No HmmEmu.sln above {thisFile} or {AppContext.BaseDirectory}.");
    }
}
