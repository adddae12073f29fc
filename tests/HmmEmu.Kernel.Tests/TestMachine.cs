using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Tests;

/// <summary>
/// A booted kernel with one process, for tests: <c>using var m = TestMachine.Create();</c> then
/// <c>m.Run(() => ...)</c> to run code that may sleep on a simulated thread.
/// </summary>
internal sealed class TestMachine : IDisposable
{
    /// <summary>The page size.</summary>
    public const ulong Page = PhysicalMemory.PageSize;

    private TestMachine(KernelOptions options)
    {
        Kernel = new HostKernel(options);
        Process = Kernel.CreateProcess("test");
    }

    /// <summary>The machine's kernel.</summary>
    public HostKernel Kernel { get; }

    /// <summary>The test process.</summary>
    public Process Process { get; }

    /// <summary>The test process's address space.</summary>
    public Mm Mm => Process.Mm;

    /// <summary>Boots a machine with the given seed, optionally a small RAM, deterministic unless told otherwise.</summary>
    public static TestMachine Create(ulong seed = 1, ulong? ramBytes = null, SchedulerMode mode = SchedulerMode.Deterministic)
    {
        var options = KernelOptions.For(seed, mode);
        if (ramBytes is { } ram)
            options = options with { RamBytes = ram };
        return new TestMachine(options);
    }

    /// <summary>Runs <paramref name="body"/> as the first simulated thread and returns when every thread is done.</summary>
    public void Run(Action body) => Kernel.Run(body);

    /// <summary>Maps <paramref name="pages"/> pages of private anonymous memory. May sleep.</summary>
    public ulong MapAnon(int pages, Prot prot = Prot.ReadWrite) =>
        Process.Map((ulong)pages * Page, prot, MapFlags.PrivateAnonymous);

    /// <summary>Writes a distinct value into every page of [addr, addr + pages). May sleep.</summary>
    public void Touch(ulong addr, int pages, int firstValue = 1)
    {
        for (int i = 0; i < pages; i++)
            Process.WriteInt32(addr + ((ulong)i * Page), firstValue + i);
    }

    /// <summary>Inserts a notifier over [start, start + length) of the test process with <paramref name="ops"/>. May sleep.</summary>
    public MmuIntervalNotifier Watch(ulong start, ulong length, IMmuIntervalNotifierOps ops) => Watch(Mm, start, length, ops);

    /// <summary>Inserts a notifier over [start, start + length) of <paramref name="mm"/> with <paramref name="ops"/>. May sleep.</summary>
    public static MmuIntervalNotifier Watch(Mm mm, ulong start, ulong length, IMmuIntervalNotifierOps ops)
    {
        var notifier = new MmuIntervalNotifier(ops);
        var err = notifier.Insert(mm, start, length);
        if (err != Errno.Ok)
            throw new InvalidOperationException($"Inserting a notifier over [0x{start:x}, +0x{length:x}) failed with {err}.");
        return notifier;
    }

    /// <summary>The test process's VMAs as (start, end, flags), in address order. May sleep.</summary>
    public (ulong Start, ulong End, VmFlags Flags)[] VmaLayout()
    {
        using (Mm.MmapReadLock())
            return [.. Mm.Vmas().Select(v => (v.Start, v.End, v.Flags))];
    }

    /// <summary>The page-table entries of [addr, addr + pages), lockless.</summary>
    public Pte[] Ptes(ulong addr, int pages)
    {
        var ptes = new Pte[pages];
        for (int i = 0; i < pages; i++)
            ptes[i] = Mm.GetPte(addr + ((ulong)i * Page));
        return ptes;
    }

    /// <summary>Stops the machine's simulated threads.</summary>
    public void Dispose() => Kernel.Dispose();
}
