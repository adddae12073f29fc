using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace HmmEmu.Packaging.Tests;

/// <summary>
/// Issue 9, item 5: the <c>hmmemu-driver</c> template works from a clean state. Its package is installed from the local
/// feed into a template hive of its own (nothing of the user's <c>dotnet new</c> setup is used or changed), a solution is
/// generated outside the repository, and it builds (every HMM rule an error on the driver) and its tests pass, restoring
/// only from the feed and the machine's package folder. A control proves the analyzers are wired in.
/// </summary>
[Collection(LocalFeedCollection.Name)]
public class TemplateTests(LocalFeed feed, ITestOutputHelper output)
{
    private const string Name = "Acme.Widget";
    private const string SourceName = "MyDevice";

    private static readonly Regex s_passed = new(@"Passed:\s+(?<n>\d+)", RegexOptions.Compiled);
    private static readonly Regex s_failed = new(@"Failed:\s+(?<n>\d+)", RegexOptions.Compiled);
    private static readonly Lock s_installLock = new();
    private static readonly Dictionary<string, string> s_hives = [];

    [Fact]
    public void Pack_ProducesTheTemplatePackageWithTheTemplateUnderContent()
    {
        string package = TemplatePackage();

        using var zip = System.IO.Compression.ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("content/hmmemu-driver/.template.config/template.json", entries);
        Assert.Contains("content/hmmemu-driver/src/MyDevice.Driver/MyDevContext.cs", entries);
        Assert.DoesNotContain(entries, e => e.StartsWith("lib/", StringComparison.Ordinal));
        Assert.DoesNotContain(entries, e => e.Contains("/bin/", StringComparison.Ordinal) || e.Contains("/obj/", StringComparison.Ordinal));
    }

    [Fact]
    public void NewHmmEmuDriver_WithAName_RenamesEveryFolderFileAndIdentifier()
    {
        string dir = Generate("template-renamed");

        var files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "nuget.config").ToList();
        Assert.Contains(Path.Combine(dir, "src", "Acme.Widget.Driver", "AcmeWidgetContext.cs"), files);
        Assert.Contains(Path.Combine(dir, "tests", "Acme.Widget.Tests", "AcmeWidgetTarget.cs"), files);
        Assert.DoesNotContain(files, f => Path.GetRelativePath(dir, f).Contains(SourceName, StringComparison.Ordinal));
        Assert.DoesNotContain(files, f => File.ReadAllText(f).Contains(SourceName, StringComparison.Ordinal));
        Assert.Contains("namespace Acme.Widget.Driver;", File.ReadAllText(Path.Combine(dir, "src", "Acme.Widget.Driver", "AcmeWidgetContext.cs")), StringComparison.Ordinal);
        Assert.Contains("<HmmEmuVersion>0.1.0</HmmEmuVersion>", File.ReadAllText(Path.Combine(dir, "Directory.Build.props")), StringComparison.Ordinal);
    }

    [Fact]
    public void NewHmmEmuDriver_GeneratedSolution_BuildsCleanAndItsTestsPass()
    {
        string dir = Generate("template-solution");

        var clock = Stopwatch.StartNew();
        string build = DotnetCli.RunOk(dir, "build", "--disable-build-servers", "-nologo");
        output.WriteLine($"dotnet build: {clock.Elapsed.TotalSeconds:F1} s");
        clock.Restart();
        string test = DotnetCli.RunOk(dir, "test", "--disable-build-servers", "-nologo");
        output.WriteLine($"dotnet test: {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(test);

        Assert.DoesNotMatch(@"warning (HMM|RDMA)\d{3}", build);
        Assert.Matches(@"\s0 Error\(s\)", build);
        int passed = s_passed.Matches(test).Sum(m => int.Parse(m.Groups["n"].Value, System.Globalization.CultureInfo.InvariantCulture));
        int failed = s_failed.Matches(test).Sum(m => int.Parse(m.Groups["n"].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(passed > 0, "no test of the generated solution ran:\n" + test);
        Assert.Equal(0, failed);
    }

    [Fact]
    public void NewHmmEmuDriver_DriverWithoutSetSeq_FailsToBuildWithHMM003()
    {
        string dir = Generate("template-control");
        string driver = Path.Combine(dir, "src", "Acme.Widget.Driver");
        string context = Path.Combine(driver, "AcmeWidgetContext.cs");
        string text = File.ReadAllText(context);
        const string setSeq = "notifier.SetSeq(curSeq);";
        Assert.Single(Regex.Matches(text, Regex.Escape(setSeq)));
        File.WriteAllText(context, text.Replace(setSeq, "", StringComparison.Ordinal));

        var (code, build) = DotnetCli.Run(driver, "build", "--disable-build-servers", "-nologo");

        Assert.NotEqual(0, code);
        Assert.Matches(@"AcmeWidgetContext\.cs\(\d+,\d+\): error HMM003", build);
    }

    // Installs the template package into a hive of this feed's own (once per feed) and generates the template with
    // -n Acme.Widget into a new folder of the feed's; returns the folder.
    private string Generate(string folder)
    {
        string hive = Hive();
        string dir = feed.NewProjectDirectory(folder);
        DotnetCli.RunOk(dir, "new", "hmmemu-driver", "-n", Name, "-o", dir, "--debug:custom-hive", hive);
        Assert.True(File.Exists(Path.Combine(dir, Name + ".slnx")), $"dotnet new made no {Name}.slnx in {dir}");
        return dir;
    }

    private string Hive()
    {
        lock (s_installLock)
        {
            if (!s_hives.TryGetValue(feed.Root, out string? hive))
            {
                hive = Path.Combine(feed.Root, "template-hive");
                DotnetCli.RunOk(feed.Root, "new", "install", TemplatePackage(), "--debug:custom-hive", hive);
                s_hives[feed.Root] = hive;
            }
            return hive;
        }
    }

    private string TemplatePackage()
    {
        string package = Path.Combine(feed.FeedDirectory, "HmmEmu.Templates.0.1.0.nupkg");
        Assert.True(File.Exists(package), feed.PackOutput);
        return package;
    }
}
