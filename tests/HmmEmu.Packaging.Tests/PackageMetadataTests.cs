using System.IO.Compression;
using System.Xml.Linq;

namespace HmmEmu.Packaging.Tests;

/// <summary>
/// Issue 9, item 4: <c>dotnet pack</c> makes a package of every library a driver author uses (the platform, the test
/// machinery, the devices' Spec/Model/Driver assemblies and the analyzers), each with its README, license and version.
/// </summary>
[Collection(LocalFeedCollection.Name)]
public class PackageMetadataTests(LocalFeed feed)
{
    private static readonly string[] s_expected =
    [
        "HmmEmu.Analyzers", "HmmEmu.Annotations", "HmmEmu.Gpu.Driver", "HmmEmu.Gpu.Model", "HmmEmu.Gpu.Spec",
        "HmmEmu.Hardware", "HmmEmu.Kernel", "HmmEmu.Mirror.Driver", "HmmEmu.Rnic.Driver", "HmmEmu.Rnic.Model",
        "HmmEmu.Rnic.Spec", "HmmEmu.Simulation", "HmmEmu.Testing",
    ];

    public static TheoryData<string> Expected() => new(s_expected);

    [Fact]
    public void Pack_MakesEveryLibraryPackageAndNoTestOrBenchmarkPackage()
    {
        var ids = Directory.GetFiles(feed.FeedDirectory, "*.nupkg").Select(p => Nuspec(p).Id).ToHashSet();

        Assert.All(s_expected, id => Assert.Contains(id, ids));
        Assert.DoesNotContain(ids, id => id.EndsWith(".Tests", StringComparison.Ordinal) || id.EndsWith(".Benchmarks", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Expected))]
    public void Package_CarriesReadmeLicenseVersionAndDescription(string id)
    {
        string path = Path.Combine(feed.FeedDirectory, $"{id}.0.1.0.nupkg");
        Assert.True(File.Exists(path), $"{id}.0.1.0.nupkg is missing:\n{feed.PackOutput}");

        var nuspec = Nuspec(path);
        Assert.Equal("0.1.0", nuspec.Version);
        Assert.Equal("MIT", nuspec.License);
        Assert.Equal("README.md", nuspec.Readme);
        Assert.False(string.IsNullOrWhiteSpace(nuspec.Description), $"{id} has no description");
        Assert.Equal("HmmEmu contributors", nuspec.Authors);
        using var zip = ZipFile.OpenRead(path);
        var readme = zip.GetEntry("README.md");
        Assert.NotNull(readme);
        using var reader = new StreamReader(readme.Open());
        Assert.StartsWith("# HmmEmu", reader.ReadToEnd(), StringComparison.Ordinal);
    }

    private static (string Id, string Version, string? License, string? Readme, string? Description, string? Authors) Nuspec(string package)
    {
        using var zip = ZipFile.OpenRead(package);
        var entry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) && !e.FullName.Contains('/', StringComparison.Ordinal));
        using var stream = entry.Open();
        var metadata = XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        string? Value(string name) => metadata.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
        return (Value("id")!, Value("version")!, Value("license"), Value("readme"), Value("description"), Value("authors"));
    }
}
