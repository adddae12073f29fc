using System.Collections.Immutable;
using System.Reflection;
using HmmEmu.Annotations;
using HmmEmu.Kernel.Locking;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;

namespace HmmEmu.Analyzers.Tests;

/// <summary>
/// What the test sources compile against: the .NET 10 reference pack of the installed SDK (found next to the running
/// runtime, so nothing is downloaded at test time) and the real HmmEmu kernel, simulation and annotations assemblies as
/// metadata references. The tests therefore check the rules against the kernel API exactly as shipped, attributes
/// included: an attribute removed from <c>KMutex.Lock</c> fails a test here.
/// </summary>
internal static class TestReferences
{
    /// <summary>A reference-assembly set that resolves nothing from NuGet; <see cref="All"/> supplies the framework.</summary>
    public static ReferenceAssemblies None { get; } = new("net10.0");

    /// <summary>The framework and HmmEmu references every test compilation gets.</summary>
    public static ImmutableArray<MetadataReference> All { get; } = Build();

    private static ImmutableArray<MetadataReference> Build()
    {
        var b = ImmutableArray.CreateBuilder<MetadataReference>();
        foreach (string path in FrameworkAssemblies())
            b.Add(MetadataReference.CreateFromFile(path));
        foreach (var assembly in new[] { typeof(KMutex).Assembly, typeof(MayBlockAttribute).Assembly, typeof(Simulation.Scheduler).Assembly })
            b.Add(MetadataReference.CreateFromFile(assembly.Location));
        return b.ToImmutable();
    }

    // The reference pack (packs/Microsoft.NETCore.App.Ref/<version>/ref/net10.0) of the dotnet root the tests run on; the
    // runtime's own assemblies if no pack is installed.
    private static IEnumerable<string> FrameworkAssemblies()
    {
        string runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        string? dotnetRoot = Path.GetFullPath(Path.Combine(runtimeDir, "..", "..", ".."));
        string packs = Path.Combine(dotnetRoot, "packs", "Microsoft.NETCore.App.Ref");
        string runtimeVersion = new DirectoryInfo(runtimeDir).Name;
        if (Directory.Exists(packs))
        {
            var candidates = Directory.GetDirectories(packs)
                .Select(d => Path.Combine(d, "ref", "net10.0"))
                .Where(Directory.Exists)
                .OrderByDescending(d => d.Contains(runtimeVersion, StringComparison.Ordinal))
                .ThenByDescending(d => d, StringComparer.Ordinal)
                .ToList();
            if (candidates.Count > 0)
                return Directory.GetFiles(candidates[0], "*.dll");
        }
        return Directory.GetFiles(runtimeDir, "*.dll").Where(IsManaged);
    }

    private static bool IsManaged(string path)
    {
        try
        {
            AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }
}
