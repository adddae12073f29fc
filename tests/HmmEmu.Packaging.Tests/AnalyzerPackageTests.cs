using System.Text.RegularExpressions;

namespace HmmEmu.Packaging.Tests;

/// <summary>
/// Issue 7, item 5: the analyzer package works from a local feed in a fresh project outside the solution. The project
/// references the HmmEmu.Kernel and HmmEmu.Analyzers packages only (no project references, no repository build files),
/// and its build reports the README's example diagnostics on the buggy callback and nothing on the fixed one.
/// </summary>
[Collection(LocalFeedCollection.Name)]
public class AnalyzerPackageTests(LocalFeed feed)
{
    private const string ProjectFile = """
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <TargetFramework>net10.0</TargetFramework>
            <Nullable>enable</Nullable>
            <ImplicitUsings>enable</ImplicitUsings>
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="HmmEmu.Kernel" Version="0.1.0" />
            <PackageReference Include="HmmEmu.Analyzers" Version="0.1.0" PrivateAssets="all" />
          </ItemGroup>
        </Project>
        """;

    // The README's example: a callback that sleeps before testing the range, and forgets SetSeq.
    private const string BuggyDriver = """
        using HmmEmu.Kernel.Locking;
        using HmmEmu.Kernel.Notifiers;

        public sealed class Driver(KMutex ptLock) : IMmuIntervalNotifierOps
        {
            private readonly KMutex _ptLock = ptLock;

            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                _ptLock.Lock();
                _ptLock.Unlock();
                return true;
            }
        }
        """;

    private const string FixedDriver = """
        using HmmEmu.Kernel.Locking;
        using HmmEmu.Kernel.Notifiers;

        public sealed class Driver(KMutex ptLock) : IMmuIntervalNotifierOps
        {
            private readonly KMutex _ptLock = ptLock;

            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                _ptLock.Lock();
                notifier.SetSeq(curSeq);
                _ptLock.Unlock();
                return true;
            }
        }
        """;

    private static readonly Regex s_hmmDiagnostic = new(@"Driver\.cs\((?<line>\d+),\d+\): warning (?<id>(HMM|RDMA)\d{3})", RegexOptions.Compiled);

    [Fact]
    public void Pack_ProducesTheAnalyzerPackageWithBothAssembliesUnderAnalyzersDotnetCs()
    {
        string package = Path.Combine(feed.FeedDirectory, "HmmEmu.Analyzers.0.1.0.nupkg");
        Assert.True(File.Exists(package), feed.PackOutput);

        using var zip = System.IO.Compression.ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("analyzers/dotnet/cs/HmmEmu.Analyzers.dll", entries);
        Assert.Contains("analyzers/dotnet/cs/HmmEmu.Analyzers.CodeFixes.dll", entries);
        Assert.DoesNotContain(entries, e => e.StartsWith("lib/", StringComparison.Ordinal));
    }

    [Fact]
    public void FreshProject_WithThePackages_ReportsTheReadmeDiagnosticsOnTheBuggyCallback()
    {
        var found = Build("buggy-driver", BuggyDriver);

        Assert.Equal([("HMM001", 10), ("HMM003", 12)], found);
    }

    [Fact]
    public void FreshProject_WithThePackages_BuildsTheFixedCallbackWithoutDiagnostics()
    {
        var found = Build("fixed-driver", FixedDriver);

        Assert.Empty(found);
    }

    // Writes the project, builds it (restoring from the local feed only) and returns the HmmEmu diagnostics by id and line.
    private List<(string Id, int Line)> Build(string name, string driver)
    {
        string dir = feed.NewProjectDirectory(name);
        File.WriteAllText(Path.Combine(dir, name + ".csproj"), ProjectFile);
        File.WriteAllText(Path.Combine(dir, "Driver.cs"), driver);

        string output = DotnetCli.RunOk(dir, "build", "--disable-build-servers", "-nologo", "-clp:NoSummary");

        return s_hmmDiagnostic.Matches(output)
            .Select(m => (m.Groups["id"].Value, int.Parse(m.Groups["line"].Value, System.Globalization.CultureInfo.InvariantCulture)))
            .Distinct()
            .OrderBy(d => d.Item2).ThenBy(d => d.Item1, StringComparer.Ordinal)
            .ToList();
    }
}
