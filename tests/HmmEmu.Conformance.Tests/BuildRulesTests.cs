using System.Diagnostics;

namespace HmmEmu.Conformance.Tests;

// Directory.Build.targets enforces the layering rules of DESIGN.md at build time.
public sealed class BuildRulesTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "hmmemu-layering-" + Guid.NewGuid().ToString("N"));

    public BuildRulesTests()
    {
        string root = FindRepoRoot();
        Directory.CreateDirectory(_dir);
        foreach (var f in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "global.json" })
            File.Copy(Path.Combine(root, f), Path.Combine(_dir, f));
        Project("devices/Foo/Foo.Model", null);
        Project("devices/Foo/Foo.Spec", null);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void DriverReferencingModel_FailsWithRuleMessage()
    {
        string driver = Project("devices/Foo/Foo.Driver", "../Foo.Model/Foo.Model.csproj");
        var (exit, output) = CheckReferences(driver);
        Assert.NotEqual(0, exit);
        Assert.Contains("Layering rule broken: driver project 'Foo.Driver' references device model 'Foo.Model'", output, StringComparison.Ordinal);
    }

    [Fact]
    public void DriverReferencingSpec_Passes()
    {
        string driver = Project("devices/Foo/Foo.Driver", "../Foo.Spec/Foo.Spec.csproj");
        var (exit, output) = CheckReferences(driver);
        Assert.True(exit == 0, output);
    }

    [Fact]
    public void ModelReferencingDriver_Fails()
    {
        Project("devices/Foo/Foo.Driver", null);
        string model = Project("devices/Foo/Foo.Model", "../Foo.Driver/Foo.Driver.csproj");
        var (exit, output) = CheckReferences(model);
        Assert.NotEqual(0, exit);
        Assert.Contains("device model 'Foo.Model' references driver 'Foo.Driver'", output, StringComparison.Ordinal);
    }

    private string Project(string relDir, string? reference)
    {
        string dir = Path.Combine(_dir, relDir);
        Directory.CreateDirectory(dir);
        string name = Path.GetFileName(relDir);
        string refs = reference is null ? "" : $"<ItemGroup><ProjectReference Include=\"{reference}\" /></ItemGroup>";
        string path = Path.Combine(dir, name + ".csproj");
        File.WriteAllText(path, $"<Project Sdk=\"Microsoft.NET.Sdk\">{refs}</Project>");
        return path;
    }

    private (int Exit, string Output) CheckReferences(string project)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = _dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { "msbuild", project, "-t:HmmEmuCheckReferences", "-nologo" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "HmmEmu.sln")))
                return d.FullName;
        }
        throw new InvalidOperationException("HmmEmu.sln not found above " + AppContext.BaseDirectory);
    }
}
