using System.Diagnostics;
using System.Globalization;
using HmmEmu.Simulation.Export;

namespace HmmEmu.Testing.Demo;

/// <summary>Boots a <see cref="DemoMachine"/>, runs every <see cref="DemoWorkloads"/> entry on it and builds the <see cref="DemoReport"/>.</summary>
public static class DemoRunner
{
    /// <summary>
    /// Runs the demo. <paramref name="progress"/> receives a line as each workload starts and ends (called on the
    /// simulation's user thread). Host time is measured for the report only; it decides nothing.
    /// </summary>
    public static DemoReport Run(DemoOptions options, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Tamper is { } t && !DemoWorkloads.Ids.Contains(t))
            throw new ArgumentException($"Tamper names no workload: '{t}'; the ids are {string.Join(", ", DemoWorkloads.Ids)}.", nameof(options));
        if (options.Only?.FirstOrDefault(id => !DemoWorkloads.Ids.Contains(id)) is { } unknown)
            throw new ArgumentException($"Only names no workload: '{unknown}'; the ids are {string.Join(", ", DemoWorkloads.Ids)}.", nameof(options));
        var rows = new List<DemoRow>();
        long start = Stopwatch.GetTimestamp();
        ulong traceHash;
        using (var machine = new DemoMachine(options))
        using (var trace = options.TracePath is null ? null : ChromeTrace.Open(options.TracePath, machine.Kernel.Scheduler))
        {
            progress?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"booting: {DemoMachine.RamBytes >> 20} MiB RAM, GPU with {DemoMachine.VramBytes >> 20} MiB VRAM, two NICs on a link; seed {options.Seed}, {options.Mode}"));
            machine.Run(m =>
            {
                var all = DemoWorkloads.All.Where(w => options.Only is null || options.Only.Contains(w.Id)).ToList();
                for (int i = 0; i < all.Count; i++)
                {
                    var w = all[i];
                    progress?.Invoke($"[{i + 1}/{all.Count}] {w.Id}: {w.Title} ...");
                    var before = m.Snapshot();
                    long t0 = Stopwatch.GetTimestamp();
                    DemoOutcome outcome;
                    try
                    {
                        outcome = w.Run(m, options);
                    }
                    catch (Exception e) when (e is InvalidOperationException or TimeoutException or ArgumentException)
                    {
                        outcome = new DemoOutcome(false, $"{e.GetType().Name}: {e.Message}");
                    }
                    double wallMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    var delta = m.Snapshot().Since(before);
                    rows.Add(new DemoRow(w.Id, w.Title, outcome.Verified, outcome.Detail, wallMs, delta, w.Id != "rdma-odp-write"));
                    progress?.Invoke(string.Create(CultureInfo.InvariantCulture,
                        $"[{i + 1}/{all.Count}] {w.Id}: {(outcome.Verified ? "verified" : "NOT VERIFIED")} in {wallMs:F0} ms wall, {delta.VirtualNs / 1000.0:F1} us virtual: {outcome.Detail}"));
                }
            });
            traceHash = machine.Kernel.Trace.Hash;
        }
        return new DemoReport(options.Seed, options.Mode, rows, traceHash, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }
}
