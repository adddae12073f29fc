using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers.Tests.Corpus;

/// <summary>
/// The bug corpus (issue 7, item 7): one small buggy driver per real kernel bug of drivers-and-bugs.md §3 (all
/// fifteen, B1–B15), each a <c>Bnn_*.cs.txt</c> file in this folder with a header naming the bug and the kernel
/// fix it mirrors, and a <c>Bnn_*.fixed.cs.txt</c> next to it carrying that fix. The files are not compiled into this
/// assembly (they are buggy on purpose); each test compiles one against the real kernel assemblies, runs every
/// analyzer of HmmEmu.Analyzers over it and compares the diagnostics with the <c>// expect: HMMnnn</c> comments in it.
/// </summary>
public class BugCorpusTests
{
    /// <summary>The bug each corpus entry reproduces, and the rule that must flag it.</summary>
    private static readonly ImmutableDictionary<string, string> s_ruleByBug = new Dictionary<string, string>
    {
        ["B1"] = "HMM001",
        ["B2"] = "HMM005",
        ["B3"] = "HMM006",
        ["B4"] = "HMM002",
        ["B5"] = "HMM004",
        ["B6"] = "HMM003",
        ["B7"] = "HMM009",
        ["B8"] = "HMM007",
        ["B9"] = "HMM010",
        ["B10"] = "HMM010",
        ["B11"] = "HMM008",
        ["B12"] = "RDMA002",
        ["B13"] = "RDMA001",
        ["B14"] = "HMM011",
        ["B15"] = "HMM012",
    }.ToImmutableDictionary();

    private static readonly Regex s_expect = new(@"//\s*expect:\s*(?<ids>[A-Z]+\d{3}(\s*,\s*[A-Z]+\d{3})*)", RegexOptions.Compiled);
    private static readonly Regex s_header = new(@"^// (?<bug>B\d+) ", RegexOptions.Compiled | RegexOptions.Multiline);

    private static readonly ImmutableArray<DiagnosticAnalyzer> s_analyzers = AllAnalyzers.Instances;

    /// <summary>The buggy corpus files, by name.</summary>
    public static TheoryData<string> Buggy() => new(CorpusFiles().Where(f => !IsFixed(f)));

    /// <summary>The fixed corpus files, by name.</summary>
    public static TheoryData<string> Fixed() => new(CorpusFiles().Where(IsFixed));

    [Theory]
    [MemberData(nameof(Buggy))]
    public async Task BuggyDriver_AllAnalyzers_ReportExactlyTheExpectedRulesAtTheMarkedLines(string file)
    {
        string source = Read(file);
        var expected = Expectations(source);
        Assert.NotEmpty(expected);

        var actual = await AnalyzeAsync(file, source);

        Assert.Equal(expected, actual);
    }

    [Theory]
    [MemberData(nameof(Fixed))]
    public async Task FixedDriver_AllAnalyzers_ReportNothing(string file)
    {
        string source = Read(file);
        Assert.Empty(Expectations(source));

        var actual = await AnalyzeAsync(file, source);

        Assert.Empty(actual);
    }

    [Fact]
    public void Corpus_EveryBugWithARule_HasOneBuggyAndOneFixedEntryFlaggedByThatRule()
    {
        var buggy = CorpusFiles().Where(f => !IsFixed(f)).ToList();
        var bugs = buggy.Select(f => f.Split('_')[0]).ToList();

        Assert.Equal(s_ruleByBug.Keys.OrderBy(b => b, StringComparer.Ordinal), bugs.OrderBy(b => b, StringComparer.Ordinal));
        foreach (string file in buggy)
        {
            string bug = file.Split('_')[0];
            string source = Read(file);
            Assert.True(s_header.Match(source) is { Success: true } m && m.Groups["bug"].Value == bug,
                $"{file}: the first comment line must name the bug it carries ('// {bug} ...').");
            Assert.Contains(Expectations(source), e => e.Id == s_ruleByBug[bug]);
            Assert.Contains(FixedName(file), CorpusFiles());
        }
        Assert.Equal(Enumerable.Range(1, 15).Select(n => $"B{n}"), s_ruleByBug.Keys.OrderBy(b => int.Parse(b[1..], System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void Corpus_EveryRuleOfTheCorpus_IsShippedAndEveryShippedRuleHasACorpusBug()
    {
        var shipped = s_analyzers.SelectMany(a => a.SupportedDiagnostics).Select(d => d.Id).ToHashSet();

        Assert.All(s_ruleByBug.Values, id => Assert.Contains(id, shipped));
        Assert.All(shipped, id => Assert.Contains(id, s_ruleByBug.Values));
    }

    // Each (rule, 1-based line) the file marks with "// expect: HMMnnn[, HMMmmm]", in order.
    private static List<(string Id, int Line)> Expectations(string source)
    {
        var result = new List<(string, int)>();
        string[] lines = source.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var m = s_expect.Match(lines[i]);
            if (!m.Success)
                continue;
            foreach (string id in m.Groups["ids"].Value.Split(',', StringSplitOptions.TrimEntries))
                result.Add((id, i + 1));
        }
        return result.OrderBy(e => e.Item2).ThenBy(e => e.Item1, StringComparer.Ordinal).ToList();
    }

    // Compiles the file against the kernel (it must compile: the corpus is realistic driver code, not broken syntax)
    // and runs every analyzer, compilation-end ones included.
    private static async Task<List<(string Id, int Line)>> AnalyzeAsync(string file, string source)
    {
        var tree = CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest), path: file);
        var diagnostics = await AllAnalyzers.AnalyzeAsync(Path.GetFileNameWithoutExtension(file).Replace('.', '_'), [tree], TestReferences.All);
        return diagnostics
            .Select(d => (d.Id, d.Location.GetLineSpan().StartLinePosition.Line + 1))
            .OrderBy(e => e.Item2).ThenBy(e => e.Id, StringComparer.Ordinal)
            .ToList();
    }

    private static bool IsFixed(string file) => file.EndsWith(".fixed.cs.txt", StringComparison.Ordinal);

    private static string FixedName(string file) => file[..^".cs.txt".Length] + ".fixed.cs.txt";

    private static string Read(string file) => File.ReadAllText(Path.Combine(CorpusDirectory(), file)).Replace("\r\n", "\n");

    private static IEnumerable<string> CorpusFiles() =>
        Directory.GetFiles(CorpusDirectory(), "B*.cs.txt").Select(Path.GetFileName).OrderBy(f => f, StringComparer.Ordinal)!;

    // The corpus is read from the source tree: this file's folder, or (if the build mapped source paths) the Corpus
    // folder found walking up from the test binaries.
    private static string CorpusDirectory([CallerFilePath] string thisFile = "")
    {
        string? dir = Path.GetDirectoryName(thisFile);
        if (dir is not null && Directory.Exists(dir) && Directory.GetFiles(dir, "B*.cs.txt").Length > 0)
            return dir;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "Corpus");
            if (Directory.Exists(candidate) && Directory.GetFiles(candidate, "B*.cs.txt").Length > 0)
                return candidate;
        }
        throw new DirectoryNotFoundException($"No bug corpus next to {thisFile} or above {AppContext.BaseDirectory}.");
    }
}
