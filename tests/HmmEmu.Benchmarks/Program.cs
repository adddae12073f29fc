using BenchmarkDotNet.Running;

namespace HmmEmu.Benchmarks;

/// <summary>Runs the benchmarks: <c>dotnet run -c Release --project tests/HmmEmu.Benchmarks -- --filter '*'</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
