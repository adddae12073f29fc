using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace HmmEmu.Analyzers.Tests;

/// <summary>
/// Issue 7's "no false positive on our drivers": every project under <c>devices/</c> is compiled here from its sources
/// (as its own assembly, against the real HmmEmu assemblies it references) and every HmmEmu analyzer runs over it. The
/// build already treats these diagnostics as errors; this test states the rule on its own and shows which diagnostic
/// a change brought, and its control case proves the harness really analyses those sources.
/// </summary>
public class DevicesTreeTests
{
    // The implicit global usings of an SDK project with ImplicitUsings enabled (Microsoft.NET.Sdk).
    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;

    /// <summary>Every project folder under devices/, as a path relative to the repository root.</summary>
    public static TheoryData<string> DeviceProjects()
    {
        string devices = Path.Combine(RepoRoot(), "devices");
        return new(Directory.GetFiles(devices, "*.csproj", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(RepoRoot(), Path.GetDirectoryName(p)!).Replace('\\', '/'))
            .OrderBy(p => p, StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(DeviceProjects))]
    public async Task DeviceProject_AllAnalyzers_ReportNothing(string project)
    {
        var diagnostics = await AnalyzeProjectAsync(project, mutate: null);

        Assert.True(diagnostics.Count == 0, $"{project}:\n{string.Join("\n", diagnostics)}");
    }

    [Fact]
    public void DeviceProjects_AreTheSevenDeviceAssemblies()
    {
        // A new device project is picked up by the theory above; this pins the current set so that a rename or a
        // project moved out of devices/ is noticed rather than silently dropped from the check.
        Assert.Equal(
            [
                "devices/Gpu/HmmEmu.Gpu.Driver", "devices/Gpu/HmmEmu.Gpu.Model", "devices/Gpu/HmmEmu.Gpu.Spec",
                "devices/Mirror/HmmEmu.Mirror.Driver",
                "devices/Rnic/HmmEmu.Rnic.Driver", "devices/Rnic/HmmEmu.Rnic.Model", "devices/Rnic/HmmEmu.Rnic.Spec",
            ],
            ((IEnumerable<object[]>)DeviceProjects()).Select(row => (string)row[0]));
    }

    [Fact]
    public async Task MirrorDriver_WithSetSeqRemovedFromItsInvalidateCallback_IsFlaggedHMM003()
    {
        // The control case: the same harness over the mirror driver with one SetSeq call taken out must report it.
        int removed = 0;
        var diagnostics = await AnalyzeProjectAsync("devices/Mirror/HmmEmu.Mirror.Driver", (file, text) =>
        {
            if (!file.EndsWith("MirrorFile.cs", StringComparison.Ordinal) || removed > 0)
                return text;
            int at = text.IndexOf("notifier.SetSeq(curSeq);", StringComparison.Ordinal);
            Assert.True(at >= 0, "MirrorFile.cs no longer calls notifier.SetSeq(curSeq); update this control case.");
            removed++;
            return text.Remove(at, "notifier.SetSeq(curSeq);".Length);
        });

        Assert.Equal(1, removed);
        Assert.Contains(diagnostics, d => d.Id == "HMM003" && d.Location.SourceTree!.FilePath.EndsWith("MirrorFile.cs", StringComparison.Ordinal));
    }

    private static async Task<List<Diagnostic>> AnalyzeProjectAsync(string project, Func<string, string, string>? mutate)
    {
        string dir = Path.Combine(RepoRoot(), project);
        string assemblyName = Path.GetFileName(dir);
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var trees = Directory.GetFiles(dir, "*.cs", SearchOption.AllDirectories)
            .Where(f => !IsBuildOutput(dir, f))
            .OrderBy(f => f, StringComparer.Ordinal)
            .Select(f =>
            {
                string text = File.ReadAllText(f);
                return CSharpSyntaxTree.ParseText(mutate is null ? text : mutate(f, text), parse, path: f);
            })
            .Append(CSharpSyntaxTree.ParseText(ImplicitUsings, parse, path: "GlobalUsings.g.cs"))
            .ToList();
        Assert.True(trees.Count > 1, $"{project} has no sources.");

        // Everything HmmEmu the test binaries carry, except the assembly being compiled from source.
        var references = TestReferences.All
            .Where(r => !string.Equals(Path.GetFileNameWithoutExtension(r.Display), assemblyName, StringComparison.Ordinal))
            .Concat(Directory.GetFiles(AppContext.BaseDirectory, "HmmEmu.*.dll")
                .Where(p => IsDeviceOrPlatformAssembly(Path.GetFileNameWithoutExtension(p), assemblyName))
                .Select(p => MetadataReference.CreateFromFile(p)))
            .ToList();

        return await AllAnalyzers.AnalyzeAsync(assemblyName, trees, references);
    }

    // Assemblies a device project may reference: the platform ones TestReferences does not already add, and the other
    // device assemblies; never the analyzers, the tests or the assembly itself.
    private static bool IsDeviceOrPlatformAssembly(string name, string self) =>
        name != self
        && !name.StartsWith("HmmEmu.Analyzers", StringComparison.Ordinal)
        && name is not ("HmmEmu.Kernel" or "HmmEmu.Annotations" or "HmmEmu.Simulation");

    private static bool IsBuildOutput(string projectDir, string file)
    {
        string relative = Path.GetRelativePath(projectDir, file).Replace('\\', '/');
        return relative.StartsWith("bin/", StringComparison.Ordinal) || relative.StartsWith("obj/", StringComparison.Ordinal);
    }

    private static string RepoRoot([CallerFilePath] string thisFile = "")
    {
        for (var d = new DirectoryInfo(Path.GetDirectoryName(thisFile)!); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "HmmEmu.sln")))
                return d.FullName;
        }
        throw new DirectoryNotFoundException($"No HmmEmu.sln above {thisFile}.");
    }
}
