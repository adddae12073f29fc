using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;

namespace HmmEmu.Packaging.Tests;

/// <summary>Runs the <c>dotnet</c> command line for a test, isolated from the <c>dotnet test</c> run around it.</summary>
internal static class DotnetCli
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(5);

    /// <summary>The repository root (the folder holding HmmEmu.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The configuration these tests were built in (Debug or Release), so packing uses the same outputs.</summary>
    public static string Configuration { get; } =
        new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Debug";

    /// <summary>Runs <c>dotnet <paramref name="arguments"/></c> in <paramref name="workingDirectory"/>; returns its exit code and output.</summary>
    public static (int ExitCode, string Output) Run(string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(DotnetPath())
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        // The test host inherits MSBuild and test-platform variables from `dotnet test`; a nested build must not see them.
        foreach (string name in start.Environment.Keys.ToList())
        {
            if (name.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)
                || name.StartsWith("TESTINGPLATFORM", StringComparison.OrdinalIgnoreCase))
                start.Environment.Remove(name);
        }
        // NUGET_PACKAGES would override the private package cache a test's nuget.config names.
        start.Environment.Remove("NUGET_PACKAGES");
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start dotnet.");
        var output = new StringBuilder();
        var lockObject = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lockObject) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lockObject) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(s_timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', arguments)} did not finish in {s_timeout}:\n{output}");
        }
        process.WaitForExit();
        lock (lockObject)
            return (process.ExitCode, output.ToString());
    }

    /// <summary>Like <see cref="Run"/>, and fails the test with the output if the exit code is not zero.</summary>
    public static string RunOk(string workingDirectory, params string[] arguments)
    {
        var (code, output) = Run(workingDirectory, arguments);
        Assert.True(code == 0, $"dotnet {string.Join(' ', arguments)} exited with {code}:\n{output}");
        return output;
    }

    private static string DotnetPath()
    {
        string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(host) && File.Exists(host) ? host : "dotnet";
    }

    private static string FindRepoRoot([CallerFilePath] string thisFile = "")
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
