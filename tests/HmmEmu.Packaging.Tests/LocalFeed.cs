namespace HmmEmu.Packaging.Tests;

/// <summary>
/// A local NuGet feed holding every package of the repository, packed once per test run from the outputs the build
/// already made (<c>dotnet pack --no-build</c>), in a temporary folder with its own global-packages folder, so that
/// nothing from the user's NuGet cache (an older 0.1.0 of the same packages) is used and nothing is left in it.
/// </summary>
public sealed class LocalFeed : IDisposable
{
    public LocalFeed()
    {
        Root = Directory.CreateTempSubdirectory("hmmemu-feed-").FullName;
        Directory.CreateDirectory(FeedDirectory);
        PackOutput = DotnetCli.RunOk(DotnetCli.RepoRoot,
            "pack", "HmmEmu.sln", "--no-build", "-c", DotnetCli.Configuration, "-o", FeedDirectory, "--disable-build-servers");
    }

    /// <summary>The temporary folder: the feed, the package cache and the test projects live under it.</summary>
    public string Root { get; }

    /// <summary>Where the .nupkg files are.</summary>
    public string FeedDirectory => Path.Combine(Root, "feed");

    /// <summary>What <c>dotnet pack</c> printed.</summary>
    public string PackOutput { get; }

    /// <summary>
    /// The machine's NuGet global-packages folder (<c>NUGET_PACKAGES</c>, else <c>~/.nuget/packages</c>): the packages
    /// the repository itself restored (xunit, FsCheck, the test SDK), used here as a local, offline package source.
    /// </summary>
    public static string MachinePackagesFolder { get; } =
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder
            ? folder
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>
    /// A new, empty folder outside the repository with a nuget.config that restores into a private package cache from
    /// two local sources and nothing else: this feed for the HmmEmu packages (source mapping: never an older HmmEmu
    /// 0.1.0 from the machine), and the machine's global-packages folder for everything else. Nothing is downloaded.
    /// </summary>
    public string NewProjectDirectory(string name)
    {
        string dir = Path.Combine(Root, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(Root, "packages")}" />
              </config>
              <packageSources>
                <clear />
                <add key="hmmemu-local" value="{FeedDirectory}" />
                <add key="machine-packages" value="{MachinePackagesFolder}" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="hmmemu-local">
                  <package pattern="HmmEmu.*" />
                </packageSource>
                <packageSource key="machine-packages">
                  <package pattern="*" />
                </packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        return dir;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A build server may still hold a file for a moment; the folder is in the temp directory either way.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class LocalFeedCollection : ICollectionFixture<LocalFeed>
{
    public const string Name = "local feed";
}
