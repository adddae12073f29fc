using HmmEmu.Kernel;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// The system under test of one coherence run: a booted machine (kernel, the target's devices, the first process),
/// the reference model beside it, and the invariant checks run after every step. <see cref="Step"/> runs one command
/// (or a concurrent pair) to quiescence in the deterministic simulation and returns the rules it broke.
/// </summary>
public sealed class CoherenceSystem : IDisposable
{
    private readonly List<Process?> _processes = [];
    private readonly IMirrorTargetDevice[] _devices;
    private readonly SortedDictionary<(int Process, int Device), IMirrorContext> _contexts = [];
    private readonly Dictionary<MmuIntervalNotifier, ulong> _lastSeq = new(ReferenceEqualityComparer.Instance);   // lookups only
    private readonly List<int> _pendingExits = [];
    private readonly List<string> _closeProblems = [];
    private int _warnings;
    private bool _tornDown;
    private bool _unsettled;

    /// <summary>
    /// Virtual time the machine gets after a step's commands returned to finish what its devices still do (an engine
    /// charging an operation, a fault being resolved) before the checks run: a bound far beyond every device timeout.
    /// Work still running after it is reported as a liveness failure (INV-12, INV-13).
    /// </summary>
    public const ulong SettleNs = 50_000_000;

    /// <summary>Boots the machine for <paramref name="config"/>. Runs on the host thread.</summary>
    public CoherenceSystem(CoherenceConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        var seeded = KernelOptions.For(config.Seed);
        var options = seeded with { Mutants = config.Mutants, Simulation = seeded.Simulation with { Schedule = config.Schedule } };
        Kernel = new HostKernel(options);
        Kernel.Trace.AddListener(Counters);
        _devices = new IMirrorTargetDevice[config.TotalDevices];
        for (int u = 0; u < config.TotalDevices; u++)
            _devices[u] = config.TargetOf(u).CreateDevice(Kernel, u);
        _processes.Add(Kernel.CreateProcess("P0"));
        Memory.AddProcess();
    }

    /// <summary>The run's configuration.</summary>
    public CoherenceConfig Config { get; }

    /// <summary>The machine.</summary>
    public HostKernel Kernel { get; }

    /// <summary>The reference model.</summary>
    public IdealMemory Memory { get; private set; } = new();

    /// <summary>Precondition counters of this run.</summary>
    public CoherenceCounters Counters { get; } = new();

    /// <summary>Set once a step broke a rule: the machine's state is no longer trustworthy.</summary>
    public bool Broken { get; private set; }

    /// <summary>The simulation's trace hash so far (same seed and commands, same hash: INV-18).</summary>
    public ulong TraceHash => Kernel.Trace.Hash;

    /// <summary>The actual process behind model process <paramref name="id"/>.</summary>
    public Process ProcessOf(int id) =>
        id < _processes.Count && _processes[id] is { } p ? p : throw new InvalidOperationException($"model process {id} is not alive");

    /// <summary>The address space of model process <paramref name="id"/>.</summary>
    public Mm Mm(int id) => ProcessOf(id).Mm;

    /// <summary>Records the actual child of a fork as model process <paramref name="id"/>.</summary>
    public void AddProcess(int id, Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (id != _processes.Count)
            throw new InvalidOperationException($"fork child registered as model process {id}, but the next id is {_processes.Count}");
        _processes.Add(process);
    }

    /// <summary>
    /// Device <paramref name="device"/>'s mirror of process <paramref name="process"/>, opened on first use. Must
    /// run on a thread of that process.
    /// </summary>
    public IMirrorContext Context(int process, int device)
    {
        lock (_contexts)
        {
            if (_contexts.TryGetValue((process, device), out var c))
                return c;
        }
        var opened = _devices[device].Open();
        lock (_contexts)
            _contexts[(process, device)] = opened;
        return opened;
    }

    /// <summary>Closes device <paramref name="device"/>'s mirror of <paramref name="process"/> if open. Runs on a thread of that process.</summary>
    public void CloseContext(int process, int device)
    {
        IMirrorContext? c;
        MmuIntervalNotifier[] notifiers = [];
        lock (_contexts)
        {
            if (_contexts.Remove((process, device), out c))
            {
                notifiers = [.. c.Notifiers];
                foreach (var n in notifiers)
                    _lastSeq.Remove(n);
            }
        }
        c?.Close();
        // INV-15 at the moment of removal: once close returned, none of its notifiers may still be registered or
        // waiting for a running invalidation to let it go (a callback could still run on freed driver state).
        foreach (var n in notifiers)
        {
            if (n.State != NotifierState.Removed)
            {
                lock (_closeProblems)
                    _closeProblems.Add($"INV-15 (unregister): close of P{process}.dev{device} returned with its notifier for [0x{n.Start:x}, 0x{n.Last:x}] still {n.State}: a callback may still run on the closed device");
            }
        }
    }

    /// <summary>Resets device <paramref name="device"/> (<see cref="MirrorCapabilities.Reset"/>). Runs on a process thread; may sleep.</summary>
    public void ResetDevice(int device)
    {
        Counters.Add(CoherenceCounters.DeviceResets);
        _devices[device].Reset();
    }

    /// <summary>exit(2) of model process <paramref name="id"/>: its mirrors close (as its files would), then its address space goes.</summary>
    public void ExitProcess(int id)
    {
        var p = ProcessOf(id);
        for (int d = 0; d < _devices.Length; d++)
            CloseContext(id, d);
        p.Exit();
        _processes[id] = null;
    }

    /// <summary>Exits model process <paramref name="id"/> once every thread of the current step finished.</summary>
    public void ExitAfterStep(int id)
    {
        lock (_pendingExits)
            _pendingExits.Add(id);
    }

    /// <summary>Counts an OOM reap the victim's driver refused.</summary>
    public void NoteOomReap(Errno result)
    {
        if (result == Errno.EAGAIN)
            Counters.Add(CoherenceCounters.OomReapsRefused);
    }

    /// <summary>
    /// Runs <paramref name="command"/> to quiescence, checks its outcome against the reference model and the
    /// invariants against the machine, and returns what broke (empty if nothing).
    /// </summary>
    public IReadOnlyList<string> Step(CoherenceCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (Broken)
            return ["the machine broke in an earlier step"];
        Counters.Add(CoherenceCounters.Steps);
        var violations = new List<string>();
        if (command is Fork && HasTranslations(command.Process))
            Counters.Add(CoherenceCounters.ForkWithDeviceMappings);
        try
        {
            if (command is Concurrent pair)
                StepConcurrent(pair, violations);
            else
                StepOne(command, violations);
            DrainCloseProblems(violations);
            // A victim of the OOM reaper is checked between the reap and its exit: the reaper must not have taken pages
            // a mirror still maps (its exit would hide that, as the mirror goes with it).
            if (violations.Count == 0 && HasPendingExits)
                CheckInvariants(violations);
            if (violations.Count == 0)
                RunPendingExits();
            DrainCloseProblems(violations);
        }
        catch (Exception e) when (e is KernelRuleViolationException or KernelBugException or SimulationDeadlockException or InvalidOperationException)
        {
            violations.Add($"rule: {e.GetType().Name}: {e.Message}{Where(e)}");
        }
        if (violations.Count == 0)
            CheckInvariants(violations);
        if (violations.Count > 0)
            Broken = true;
        return violations;
    }

    // The innermost frames of the simulated thread that broke the rule, so the report points at the code.
    private static string Where(Exception e)
    {
        var inner = e.InnerException ?? e;
        var frames = (inner.StackTrace ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Take(4);
        return string.Concat(frames.Select(f => "\n      " + f));
    }

    private void StepOne(CoherenceCommand command, List<string> violations)
    {
        var outcome = Execute([command])[0];
        var e = new Expectations();
        command.Expect(Memory, outcome, e);
        violations.AddRange(e.Problems.Values);
        command.Apply(Memory, outcome);
        if (command is DeviceAtomicAdd atomic && outcome.Err == Errno.Ok)
            CheckAtomicity(atomic, violations);
    }

    // INV-8: right after a device atomic (nothing else ran since), the device holds the page exclusively: an
    // atomic translation, backed by a device-exclusive CPU entry (or the page lives in its device memory). A device
    // with bus atomics needs no exclusivity: system memory runs its read-modify-write indivisibly.
    private void CheckAtomicity(DeviceAtomicAdd atomic, List<string> violations)
    {
        if ((Config.CapabilitiesOf(atomic.Device) & MirrorCapabilities.BusAtomics) != 0)
            return;
        ulong addr = Layout.PageAddress(atomic.Page);
        var pte = Mm(atomic.P).GetPte(addr);
        bool atomicEntry = _contexts.TryGetValue((atomic.P, atomic.Device), out var ctx) && ctx.Translations().Any(t => t.Address == addr && t.Atomic);
        if (!(atomicEntry && pte.IsDeviceExclusive) && !pte.IsDevicePrivate)
            violations.Add($"INV-8 (device atomicity): {atomic} completed, but the device holds {(atomicEntry ? "an atomic entry" : "no atomic entry")} and the CPU entry is not device-exclusive: the CPU could write between the atomic's read and write");
    }

    // Both orders are tried word by word: a problem counts only if it shows whichever command went first.
    private void StepConcurrent(Concurrent pair, List<string> violations)
    {
        Counters.Add(CoherenceCounters.ConcurrentPairs);
        if (RacesInvalidation(pair.A, pair.B) || RacesInvalidation(pair.B, pair.A))
            Counters.Add(CoherenceCounters.DeviceRacedInvalidation);
        var outcomes = Execute([pair.A, pair.B]);
        CoherenceCommand a = pair.A, b = pair.B;
        CommandOutcome oa = outcomes[0], ob = outcomes[1];
        if (b.Aborts(a, oa))
            oa = oa with { Aborted = true };
        if (a.Aborts(b, ob))
            ob = ob with { Aborted = true };
        var m0 = Memory;
        var ma = m0.Clone();
        a.Apply(ma, oa);
        var mb = m0.Clone();
        b.Apply(mb, ob);
        violations.AddRange(Expectations.InAll(Expect(a, m0, oa), Expect(a, mb, oa)).Select(v => $"{v} (racing {b})"));
        violations.AddRange(Expectations.InAll(Expect(b, m0, ob), Expect(b, ma, ob)).Select(v => $"{v} (racing {a})"));
        var mab = ma.Clone();
        b.Apply(mab, ob);
        var mba = mb.Clone();
        a.Apply(mba, oa);
        Memory = IdealMemory.Merge(mab, mba);
    }

    private static Expectations Expect(CoherenceCommand c, IdealMemory m, CommandOutcome o)
    {
        var e = new Expectations();
        c.Expect(m, o, e);
        return e;
    }

    private static bool RacesInvalidation(CoherenceCommand device, CoherenceCommand other) =>
        device is DeviceCommand && (other.ChangesShape || other is MadviseDontNeed or MigrateToDevice or MigrateToSystem or DeviceExclusive or CpuWrite or CpuAtomicAdd)
        && device.Process == other.Process
        && (other.Pages is not (int f, int n) || device.Pages is not (int df, int dn) || (f < df + dn && df < f + n));

    // Runs the commands on one thread each of their processes, from a common start, until the machine is quiescent.
    private CommandOutcome[] Execute(CoherenceCommand[] commands)
    {
        OpenContexts(commands);
        var outcomes = new CommandOutcome[commands.Length];
        for (int i = 0; i < commands.Length - 1; i++)
        {
            int index = i;
            var c = commands[i];
            ProcessOf(c.Process).StartThread($"cmd{i}", () => outcomes[index] = c.Execute(this));
        }
        // The last command's thread is carried by this host thread (same trace as one more StartThread and a Run).
        int last = commands.Length - 1;
        var lastCommand = commands[last];
        ProcessOf(lastCommand.Process).RunThread($"cmd{last}", () => outcomes[last] = lastCommand.Execute(this));
        Settle();
        return outcomes;
    }

    // Opens (before the step starts) every mirror the step's device commands use, so that two concurrent commands
    // never both open the same one.
    private void OpenContexts(CoherenceCommand[] commands)
    {
        var opening = new SortedSet<(int, int)>();
        foreach (var c in commands)
        {
            if (c is not DeviceCommand d || d is Reopen || _contexts.ContainsKey((d.P, d.Device)) || !opening.Add((d.P, d.Device)))
                continue;
            ProcessOf(d.P).StartThread("open", () => Context(d.P, d.Device));
        }
        if (opening.Count > 0)
            Kernel.Scheduler.Run();
    }

    // Runs the daemons' remaining work (Scheduler.Settle); remembers a machine that did not settle in SettleNs.
    private void Settle()
    {
        if (!Kernel.Scheduler.Settle(SettleNs))
            _unsettled = true;
    }

    private void DrainCloseProblems(List<string> violations)
    {
        if (_unsettled)
        {
            _unsettled = false;
            violations.Add($"INV-12/INV-13 (liveness): device work was still running {SettleNs / 1_000_000} ms of virtual time after the step's commands returned");
        }
        lock (_closeProblems)
        {
            violations.AddRange(_closeProblems);
            _closeProblems.Clear();
        }
    }

    private bool HasPendingExits
    {
        get
        {
            lock (_pendingExits)
                return _pendingExits.Count > 0;
        }
    }

    private void RunPendingExits()
    {
        int[] exits;
        lock (_pendingExits)
        {
            exits = [.. _pendingExits];
            _pendingExits.Clear();
        }
        foreach (int id in exits)
        {
            ProcessOf(id).RunThread("exit", () => ExitProcess(id));
            Settle();
        }
    }

    private bool HasTranslations(int process)
    {
        foreach (var ((p, _), c) in _contexts)
        {
            if (p == process && c.Translations().Count > 0)
                return true;
        }
        return false;
    }

    /// <summary>
    /// The invariants checked at quiescence after every step: INV-1 (every device translation is justified by the CPU
    /// page table: same frame, no more rights; atomic entries only on device-exclusive pages, INV-8), INV-4 (notifier
    /// sequences even at quiescence and never going backwards), INV-5 (every invalidate start ended), INV-11 (no
    /// translation of a freed frame), INV-15 (one notifier per open mirror; none after close), and no kernel WARN.
    /// </summary>
    public void CheckInvariants(List<string> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        if (Kernel.Warnings.Count > _warnings)
        {
            violations.Add($"kernel WARN: {Kernel.Warnings[_warnings]}");
            _warnings = Kernel.Warnings.Count;
        }
        for (int d = 0; d < _devices.Length; d++)
        {
            foreach (var problem in _devices[d].QuiescentProblems())
                violations.Add($"dev{d}: {problem}");
        }
        var mem = Kernel.Memory;
        for (int id = 0; id < _processes.Count; id++)
        {
            if (_processes[id] is not { } process)
                continue;
            var mm = process.Mm;
            if (mm.ActiveInvalidateRanges != 0)
                violations.Add($"INV-5 (pairing): P{id}'s mm has {mm.ActiveInvalidateRanges} invalidation(s) started and never ended at quiescence");
            if ((mm.NotifierSeq & 1) != 0)
                violations.Add($"INV-4 (sequence): P{id}'s mm invalidate sequence 0x{mm.NotifierSeq:x} is odd at quiescence (an invalidation never ended)");
            int open = _contexts.Where(k => k.Key.Process == id).Sum(k => k.Value.Notifiers.Count);
            if (mm.NotifierCount != open)
                violations.Add($"INV-15 (unregister): P{id}'s mm has {mm.NotifierCount} interval notifier(s) but its open devices hold {open}");
            foreach (var ((p, d), ctx) in _contexts)
            {
                if (p != id)
                    continue;
                foreach (var n in ctx.Notifiers)
                {
                    if (_lastSeq.TryGetValue(n, out ulong last) && n.Seq < last)
                        violations.Add($"INV-4 (sequence): P{p}.dev{d}'s notifier sequence went back from 0x{last:x} to 0x{n.Seq:x} (a reader's snapshot can match again)");
                    _lastSeq[n] = n.Seq;
                }
                foreach (var t in ctx.Translations())
                {
                    Counters.Add(CoherenceCounters.TranslationsChecked);
                    if (Unjustified(mm, t) is { } why)
                        violations.Add($"INV-1 (translation ⊆ CPU mapping): P{p}.dev{d} {t.Source} maps 0x{t.Address:x} -> pfn 0x{t.Pfn:x}{(t.Writable ? " writable" : "")}{(t.Atomic ? " atomic" : "")}, but {why}");
                    else if (mem.RefCount(t.Pfn) <= 0)
                        violations.Add($"INV-11 (use after free): P{p}.dev{d} {t.Source} maps 0x{t.Address:x} -> pfn 0x{t.Pfn:x}, a free frame");
                }
            }
        }
    }

    // Why the CPU page table does not justify a device translation, or null if it does.
    private static string? Unjustified(Mm mm, DeviceTranslation t)
    {
        var pte = mm.GetPte(t.Address);
        if (t.Atomic)
        {
            // Exclusive by construction: the device's own memory (the CPU must fault to reach it), or a RAM page the
            // CPU entry hands to the device (make_device_exclusive).
            bool exclusive = (pte.IsDeviceExclusive || pte.IsDevicePrivate) && pte.Pfn == t.Pfn;
            return exclusive ? null : $"the CPU entry is {Describe(pte)}, not device-exclusive or device-private for that frame (INV-8)";
        }
        if (pte.IsDeviceExclusive)
            return pte.Pfn == t.Pfn ? null : $"the CPU entry is {Describe(pte)}";
        if (pte.IsDevicePrivate)
        {
            if (pte.Pfn != t.Pfn)
                return $"the CPU entry is {Describe(pte)}";
            return t.Writable && !pte.IsWritableEntry ? $"the CPU's device-private entry is read-only" : null;
        }
        if (!pte.IsReadable || pte.Pfn != t.Pfn)
            return $"the CPU entry is {Describe(pte)}";
        return t.Writable && !pte.IsWritable ? "the CPU entry is read-only" : null;
    }

    private static string Describe(Pte pte) => pte switch
    {
        { IsNone: true } => "none",
        { IsDevicePrivate: true } => $"device-private pfn 0x{pte.Pfn:x}",
        { IsDeviceExclusive: true } => $"device-exclusive pfn 0x{pte.Pfn:x}",
        { IsMigration: true } => $"a migration entry",
        { IsReadable: true } => $"pfn 0x{pte.Pfn:x} {(pte.IsWritable ? "rw" : "ro")}",
        _ => $"0x{pte.Raw:x}",
    };

    /// <summary>
    /// Ends the run: every process exits (closing its mirrors), then checks that nothing leaked — no device page still
    /// allocated, no RAM page in use. Returns what broke.
    /// </summary>
    public IReadOnlyList<string> TearDown()
    {
        if (_tornDown || Broken)
            return [];
        _tornDown = true;
        var violations = new List<string>();
        try
        {
            for (int id = _processes.Count - 1; id >= 0; id--)
            {
                if (_processes[id] is null)
                    continue;
                int pid = id;
                ProcessOf(pid).RunThread("exit", () => ExitProcess(pid));
            }
        }
        catch (Exception e) when (e is KernelRuleViolationException or KernelBugException or SimulationDeadlockException or InvalidOperationException)
        {
            violations.Add($"rule: {e.GetType().Name} at teardown: {e.Message}");
            Broken = true;
            return violations;
        }
        DrainCloseProblems(violations);
        try
        {
            // Unbind every device (the last first), so that what their drivers allocated comes back before the leak check.
            Kernel.Run(() =>
            {
                for (int d = _devices.Length - 1; d >= 0; d--)
                    _devices[d].Remove();
            });
        }
        catch (Exception e) when (e is KernelRuleViolationException or KernelBugException or SimulationDeadlockException or InvalidOperationException)
        {
            violations.Add($"rule: {e.GetType().Name} at device removal: {e.Message}");
            Broken = true;
            return violations;
        }
        if (Kernel.Warnings.Count > _warnings)
            violations.Add($"kernel WARN at teardown: {Kernel.Warnings[_warnings]}");
        for (int d = 0; d < _devices.Length; d++)
        {
            if (_devices[d].AllocatedDevicePages != 0)
                violations.Add($"INV-15 (release): device {d} still has {_devices[d].AllocatedDevicePages} page(s) allocated after every process exited");
        }
        var mem = Kernel.Memory;
        if (mem.UsedPages != (ulong)mem.LruPages)
            violations.Add($"INV-11 (frame lifecycle): {mem.UsedPages - (ulong)mem.LruPages} RAM page(s) still in use after every process exited");
        return violations;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var d in _devices)
        {
            try
            {
                (d as IDisposable)?.Dispose();
            }
            catch (InvalidOperationException) when (Broken)
            {
                // A step that broke a rule may have left simulated threads stopped mid-way, so a device model cannot
                // drain its workers; the failure is already reported, and this one would only hide it.
            }
        }
        Kernel.Dispose();
    }
}
