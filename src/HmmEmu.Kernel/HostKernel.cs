using HmmEmu.Annotations;
using HmmEmu.Kernel.Fs;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel;

/// <summary>
/// The simulated host kernel: the root object that owns the scheduler, physical memory, the lock checker, the
/// processes and the system work queue. Kernel API calls reach it through the objects it creates.
/// </summary>
public sealed class HostKernel : IDisposable
{
    private static readonly TraceEventType s_warnEvent = new("kernel", "warn", "count");

    private readonly Lock _lock = new();
    private readonly List<KernelWarning> _warnings = [];
    private readonly List<Process> _processes = [];
    private int _nextPid = 1;
    private int _nextFileId = 1;
    private int _nextMmId;
    private bool _disposed;

    /// <summary>Boots a kernel with the given options (or the defaults).</summary>
    public HostKernel(KernelOptions? options = null)
    {
        Options = options ?? new KernelOptions();
        Scheduler = Scheduler.Create(Options.Simulation);
        Scheduler.Trace.RetainEvents = Options.RetainTrace;
        Lockdep = new Lockdep { Enabled = Options.Lockdep };
        Memory = new PhysicalMemory(this, Options.RamBytes, Options.DevicePages);
        Reclaim = new PageReclaim(this);
        Memory.Reclaimer = Reclaim;
        SystemWorkQueue = new WorkQueue(this, "events");
    }

    /// <summary>The options the kernel booted with.</summary>
    public KernelOptions Options { get; }

    /// <summary>The scheduler that runs every simulated thread of this machine.</summary>
    public Scheduler Scheduler { get; }

    /// <summary>The machine's event trace.</summary>
    public Trace Trace => Scheduler.Trace;

    /// <summary>Virtual time.</summary>
    public VirtualClock Clock => Scheduler.Clock;

    /// <summary>The virtual-time cost model.</summary>
    public TimingModel Timing => Scheduler.Timing;

    /// <summary>The runtime lock checker.</summary>
    public Lockdep Lockdep { get; }

    /// <summary>System RAM.</summary>
    public PhysicalMemory Memory { get; }

    /// <summary>The page reclaimer run by the allocator's slow path.</summary>
    public PageReclaim Reclaim { get; }

    /// <summary>The shared work queue (system_wq).</summary>
    public WorkQueue SystemWorkQueue { get; }

    /// <summary>Warnings (kernel WARNs) raised so far, in order.</summary>
    public IReadOnlyList<KernelWarning> Warnings
    {
        get { lock (_lock) return [.. _warnings]; }
    }

    /// <summary>Runs the simulation until quiescent, with <paramref name="main"/> as its first thread. See <see cref="Scheduler.Run(Action?)"/>.</summary>
    public void Run(Action main) => Scheduler.Run(main);

    /// <summary>Creates a process with an empty address space. Its threads are started with <see cref="Process.StartThread"/>.</summary>
    public Process CreateProcess(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Process p;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            p = new Process(this, _nextPid++, name, new Mm(this));
            _processes.Add(p);
        }
        return p;
    }

    /// <summary>Creates an unnamed regular file (open with O_TMPFILE), backed by the page cache and a simulated disk.</summary>
    public SimFile CreateTmpFile(string name = "tmpfile")
    {
        int id;
        lock (_lock) id = _nextFileId++;
        return new SimFile(this, id, name, shmem: false);
    }

    internal SimFile CreateShmemFile(string name)
    {
        int id;
        lock (_lock) id = _nextFileId++;
        return new SimFile(this, id, name, shmem: true);
    }

    // Address spaces that may still map pages (their process has not exited), in creation order: the reverse map
    // that device-memory eviction walks.
    internal Vm.Mm[] LiveAddressSpaces()
    {
        lock (_lock)
            return [.. _processes.Select(p => p.Mm).Where(mm => !mm.HasExited).Distinct()];
    }

    internal int AllocateMmId() => Interlocked.Increment(ref _nextMmId);

    internal Process Fork(Process parent, Mm childMm)
    {
        lock (_lock)
        {
            var child = new Process(this, _nextPid++, parent.Name, childMm) { Parent = parent };
            _processes.Add(child);
            return child;
        }
    }

    /// <summary>The process whose thread is running this code (current), or null on a kernel or host thread.</summary>
    public Process? CurrentProcess => TaskContext.For(this).Process;

    /// <summary>A random stream for a named component, derived from the machine's seed.</summary>
    public SimRandom CreateRandom(string component) => Scheduler.CreateRandom(component);

    /// <summary>might_sleep(): reports if the calling thread is in a context that must not sleep.</summary>
    [MayBlock]
    public void MightSleep(string what) => Lockdep.MightSleep(TaskContext.For(this), what);

    /// <summary>
    /// might_alloc(): annotates an allocation with <paramref name="gfp"/> without making one. A reclaim-capable
    /// allocation may sleep, enter reclaim and invalidate device mappings; the lock checker learns that here.
    /// </summary>
    [MayReclaim(FlagsParameter = nameof(gfp), ReclaimFlags = (long)Gfp.DirectReclaim)]
    public void MightAlloc(Gfp gfp) => MightAlloc(TaskContext.For(this), gfp);

    internal void MightAlloc(TaskContext task, Gfp gfp)
    {
        if ((gfp & Gfp.DirectReclaim) == 0)
            return;
        Lockdep.MightSleep(task, $"allocation with {gfp}");
        if (task.ReclaimDepth > 0 || !Lockdep.Enabled)
            return;
        // fs_reclaim_acquire: reclaim may run here, and reclaim may start mmu-notifier invalidations.
        bool fs = (gfp & Gfp.Fs) != 0;
        if (fs)
            Lockdep.MapAcquire(task, Lockdep.FsReclaim);
        try
        {
            Lockdep.MapTouch(task, Lockdep.InvalidateRangeStart);
        }
        finally
        {
            if (fs)
                Lockdep.MapRelease(task, Lockdep.FsReclaim);
        }
    }

    /// <summary>Enters interrupt context on the calling thread until the scope is disposed.</summary>
    public InterruptScope EnterInterrupt() => new(TaskContext.For(this));

    /// <summary>Records a kernel WARN: the rule that was broken and the fix. Throws instead if <see cref="KernelOptions.PanicOnWarn"/>.</summary>
    public void Warn(string message)
    {
        var task = TaskContext.For(this);
        var w = new KernelWarning(Clock.Now, task.Name, message);
        int count;
        lock (_lock)
        {
            _warnings.Add(w);
            count = _warnings.Count;
        }
        Trace.Record(s_warnEvent, (ulong)count);
        if (Options.PanicOnWarn)
            throw new KernelRuleViolationException("Kernel panic - not syncing: panic_on_warn set ... " + w);
    }

    /// <summary>Throws if any WARN was raised: a one-line check for the end of a test.</summary>
    public void AssertNoWarnings()   // kernel WARNs (rule violations), not compiler warnings: suppresses nothing
    {
        var w = Warnings;
        if (w.Count > 0)
            throw new KernelRuleViolationException($"{w.Count} kernel warning(s) were raised; the first: {w[0]}");
    }

    /// <summary>Stops every simulated thread.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
        }
        SystemWorkQueue.Dispose();
        Scheduler.Dispose();
    }
}
