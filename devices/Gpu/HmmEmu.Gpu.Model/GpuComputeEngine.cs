using System.Buffers.Binary;
using System.Numerics;
using Debug = System.Diagnostics.Debug;
using System.Runtime.InteropServices;
using HmmEmu.Hardware.Engines;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Rings;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Gpu.Model;

/// <summary>
/// The GPU's command processor, compute engine and fault unit, run by one worker. On each wake-up the worker moves
/// commands from the command ring into per-context FIFOs, then serves the contexts round-robin one step at a time: a
/// step starts a command, or runs one page span of a kernel inside one MMU use. A context stalled on a fault or
/// stopped by an error is skipped, so it never holds the others up; the order is fixed by the context numbers.
/// </summary>
/// <remarks>
/// Locking: <see cref="_lock"/> guards every <see cref="GpuContextSlot"/> field and the fault-unit counters; it is
/// never held across a wait, a walk or a virtual-time charge. Register handlers (driver threads) only set flags under
/// it and kick the worker; every state transition of a command happens on the worker, between steps, so a reset or an
/// invalidation never races a step in flight.
/// </remarks>
internal sealed class GpuComputeEngine : IDisposable
{
    private static readonly TraceEventType s_faultEvent = new("gpu", "fault", "context", "address", "access");
    private static readonly TraceEventType s_contextErrorEvent = new("gpu", "context_error", "context", "error", "address");
    private static readonly TraceEventType s_resetEvent = new("gpu", "compute_reset", "discarded");
    private static readonly TraceSpanType s_kernelSpan = new("gpu", "kernel", crossThread: true, "context<<8|kernel", "arg0", "arg1");
    private static readonly TraceEventType s_tlbCounter = TraceEventType.Counter("gpu", "compute_tlb_hit_rate", "percent");

    private readonly GpuModel _model;
    private readonly Scheduler _scheduler;
    private readonly GpuModelOptions _options;
    private readonly DeviceMmu _mmu;
    private readonly IMemoryPort _system;
    private readonly IMemoryPort _vram;
    private readonly EngineWorker<GpuWork> _worker;
    private readonly SimWaitQueue _gateQueue;
    private readonly Lock _lock = new();
    private readonly GpuContextSlot[] _contexts = new GpuContextSlot[GpuRegisters.Contexts];

    private int _kickPending;
    private int _disposed;
    private int _resetsRequested;
    private int _resetsDone;                 // written by the worker only
    private long _replayGeneration;
    private int _next;                       // worker only: the context the round-robin looks at first
    private uint _faultSequence;             // under _lock
    private uint _faultOverflows;            // under _lock
    private int _gateCountdown = -1;         // test knob: steps to let through before holding; -1 open
    private int _gateHeld;
    private int _gateReleased;

    /// <summary>Creates the engine and its worker.</summary>
    public GpuComputeEngine(GpuModel model, Scheduler scheduler, GpuModelOptions options, DeviceMmu mmu,
        IMemoryPort system, IMemoryPort vram)
    {
        _model = model;
        _scheduler = scheduler;
        _options = options;
        _mmu = mmu;
        _system = system;
        _vram = vram;
        for (int i = 0; i < _contexts.Length; i++)
            _contexts[i] = new GpuContextSlot(i);
        CommandRing = new SubmissionRing(system, GpuCommand.Size, static e => BinaryPrimitives.ReadUInt16LittleEndian(e[GpuCommand.ContextOffset..]) < GpuRegisters.Contexts);
        FaultBuffer = new CompletionRing(system, GpuFaultRecord.Size);
        _gateQueue = new SimWaitQueue(scheduler, "gpu compute gate");
        _worker = new EngineWorker<GpuWork>(scheduler, "gpu compute", new Handler(this));
    }

    /// <summary>The command ring (64-byte <see cref="GpuCommand"/> entries).</summary>
    public SubmissionRing CommandRing { get; }

    /// <summary>The replayable fault buffer (32-byte <see cref="GpuFaultRecord"/>s).</summary>
    public CompletionRing FaultBuffer { get; }

    /// <summary>Whether a reset was requested and the worker has not finished it.</summary>
    public bool ResetPending => Volatile.Read(ref _resetsDone) != Volatile.Read(ref _resetsRequested);

    /// <summary>FAULT_OVERFLOWS.</summary>
    public uint FaultOverflows
    {
        get { lock (_lock) return _faultOverflows; }
    }

    /// <summary>Faults taken so far (the last record's sequence number).</summary>
    public uint FaultsTaken
    {
        get { lock (_lock) return _faultSequence; }
    }

    /// <summary>Whether the worker is held at the test gate.</summary>
    public bool GateHeld => Volatile.Read(ref _gateHeld) != 0;

    /// <summary>Wakes the worker to look for work. Never sleeps; any thread.</summary>
    public void Kick()
    {
        if (Interlocked.Exchange(ref _kickPending, 1) == 0 && !_worker.Post(GpuWork.Kick))
            Volatile.Write(ref _kickPending, 0);
    }

    /// <summary>Requests a reset; the worker performs it between steps. Never sleeps.</summary>
    public void RequestReset()
    {
        Interlocked.Increment(ref _resetsRequested);
        if (!_worker.Post(GpuWork.Reset))
            Interlocked.Decrement(ref _resetsRequested);
    }

    /// <summary>FAULT_REPLAY: every stalled context retries its faulting access. Never sleeps.</summary>
    public void Replay()
    {
        Interlocked.Increment(ref _replayGeneration);
        Kick();
    }

    /// <summary>FAULT_CANCEL: the stalled command of <paramref name="context"/> fails. Never sleeps.</summary>
    public void Cancel(int context)
    {
        lock (_lock)
        {
            var c = _contexts[context];
            if (!c.Stalled)
                return;
            c.CancelRequested = true;
        }
        Kick();
    }

    /// <summary>
    /// The contexts stalled on a fault that no FAULT_REPLAY or FAULT_CANCEL written since has answered, in id order.
    /// A context whose answer is written but not yet acted on (the engine is still busy in virtual time) is not one.
    /// </summary>
    public IReadOnlyList<int> UnansweredStalls()
    {
        var stalled = new List<int>();
        lock (_lock)
        {
            foreach (var c in _contexts)
            {
                if (c.Stalled && !c.CancelRequested && c.StallGeneration == Interlocked.Read(ref _replayGeneration))
                    stalled.Add(c.Id);
            }
        }
        return stalled;
    }

    /// <summary>CTX_CONTROL.VALID changed (driver write). Never sleeps.</summary>
    public void SetValid(int context, bool valid, ulong ptBase)
    {
        lock (_lock)
        {
            var c = _contexts[context];
            if (valid == c.Valid)
                return;
            c.Valid = valid;
            if (valid)
            {
                if (c.InvalidatePending)
                {
                    // The clear came before this write, so it covers only what was queued then: fail that now (the
                    // running command, owned by the worker, at its next step); commands submitted from now on run.
                    c.InvalidatePending = false;
                    while (c.Fifo.TryDequeue(out var stale))
                        FinishFailedLocked(c, stale.Command);
                    c.FailCurrentQuietly = c.HasCurrent;
                }
                _mmu.Roots[c.Id] = new DevicePte(ptBase);
                c.Error = GpuContextError.None;
                c.ErrorAddress = 0;
                UpdateStateLocked(c, leaveError: true);
                return;
            }
            _mmu.Roots.Clear(c.Id);
            c.InvalidatePending = true;
        }
        Kick();
    }

    /// <summary>CTX_STATUS of <paramref name="context"/>: state [1:0], error [15:8].</summary>
    public ulong ReadStatus(int context)
    {
        lock (_lock)
        {
            var c = _contexts[context];
            return (ulong)c.State | ((ulong)c.Error << 8);
        }
    }

    /// <summary>CTX_ERROR_ADDRESS of <paramref name="context"/>.</summary>
    public ulong ReadErrorAddress(int context)
    {
        lock (_lock)
            return _contexts[context].ErrorAddress;
    }

    /// <summary>CTX_COMPLETED of <paramref name="context"/>.</summary>
    public ulong ReadCompleted(int context)
    {
        lock (_lock)
            return _contexts[context].Completed;
    }

    /// <summary>
    /// Function-level reset of the engine's register-visible state: every context idle and invalid, counters zero,
    /// rings disabled. Only while the worker is quiet (after a finished reset). Never sleeps.
    /// </summary>
    public void ResetRegisterState()
    {
        lock (_lock)
        {
            foreach (var c in _contexts)
            {
                Debug.Assert(!c.HasWork, "a function-level reset runs after the engine discarded every command");
                c.Fifo.Clear();
                c.Valid = false;
                c.InvalidatePending = false;
                c.State = GpuContextState.Idle;
                c.Error = GpuContextError.None;
                c.ErrorAddress = 0;
                c.Completed = 0;
                c.HasCurrent = false;
                c.Stalled = false;
                c.CancelRequested = false;
            }
            _faultSequence = 0;
            _faultOverflows = 0;
        }
        // Disabled with indices back at 0 (a configure with no ring does both), so the index registers read their reset value.
        foreach (DescriptorRing ring in (ReadOnlySpan<DescriptorRing>)[CommandRing, FaultBuffer])
        {
            ring.Disable();
            ring.Configure(0, 0);
            ring.Disable();
        }
    }

    /// <summary>Test knob: the step after <paramref name="stepsBefore"/> more steps stops inside its MMU use, after its translations, until <see cref="ReleaseGate"/>.</summary>
    public void ArmGate(int stepsBefore)
    {
        Volatile.Write(ref _gateReleased, 0);
        Volatile.Write(ref _gateCountdown, stepsBefore);
    }

    /// <summary>Test knob: lets a held step go on and opens the gate.</summary>
    public void ReleaseGate()
    {
        Volatile.Write(ref _gateCountdown, -1);
        Volatile.Write(ref _gateReleased, 1);
        _gateQueue.WakeAll();
    }

    /// <summary>Stops the worker (queued wake-ups are dropped) and waits for it.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _disposed, 1);
        ReleaseGate();
        _worker.Dispose();
    }

    // ---- the worker ------------------------------------------------------------------------------------------------

    // Runs on the worker thread only.
    private void RunLoop()
    {
        while (Volatile.Read(ref _disposed) == 0)
        {
            if (Volatile.Read(ref _resetsDone) != Volatile.Read(ref _resetsRequested))
            {
                DoReset();
                continue;
            }
            DispatchCommands();
            if (!RunOneStep())
                return;
        }
    }

    // Runs on the worker thread only: moves every pending command of the ring into its context's FIFO.
    private void DispatchCommands()
    {
        Span<byte> entry = stackalloc byte[GpuCommand.Size];
        while (true)
        {
            var fetch = CommandRing.TryPeek(entry, out var ticket);
            if (fetch == RingFetch.Faulted)
            {
                _model.CommandRingStopped(CommandRing.Status.ErrorIndex);
                return;
            }
            if (fetch != RingFetch.Entry)
                return;
            var command = GpuCommand.Read(entry);
            bool reservedZero = GpuCommand.ReservedIsZero(entry);
            CommandRing.Advance(ticket);
            lock (_lock)
            {
                var c = _contexts[command.Context];
                c.Fifo.Enqueue(new GpuCommandEntry(command, reservedZero));
                UpdateStateLocked(c, leaveError: true);
            }
        }
    }

    // Runs on the worker thread only: one round-robin step. False when no context can make progress.
    private bool RunOneStep()
    {
        GpuContextSlot? chosen = null;
        bool started = false;
        ulong charge = 0;
        lock (_lock)
        {
            for (int i = 0; i < _contexts.Length && chosen is null; i++)
            {
                int index = (_next + i) % _contexts.Length;
                var c = _contexts[index];
                if (c.FailCurrentQuietly)
                {
                    c.FailCurrentQuietly = false;
                    if (c.HasCurrent)
                    {
                        c.HasCurrent = false;
                        c.Stalled = false;
                        c.CancelRequested = false;
                        FinishFailedLocked(c, c.Current);
                    }
                    _next = index + 1;
                    return true;
                }
                if (c.InvalidatePending)
                {
                    c.InvalidatePending = false;
                    FailAllLocked(c, GpuContextError.ContextInvalid, 0);
                    _next = index + 1;
                    return true;
                }
                if (c.Stalled)
                {
                    if (c.CancelRequested)
                    {
                        FailCurrentLocked(c, GpuContextError.FaultCancelled, c.FaultAddress);
                        _next = index + 1;
                        return true;
                    }
                    if (Interlocked.Read(ref _replayGeneration) == c.StallGeneration)
                        continue;
                    c.Stalled = false;
                    UpdateStateLocked(c, leaveError: true);
                    charge += _options.FarFaultNs;
                    chosen = c;
                }
                else if (c.HasCurrent)
                {
                    chosen = c;
                }
                else if (c.Fifo.Count != 0)
                {
                    StartLocked(c, c.Fifo.Dequeue());
                    _next = index + 1;
                    started = true;
                    charge += _options.CommandNs;
                    break;
                }
                if (chosen is not null)
                    _next = index + 1;
            }
        }
        if (charge != 0)
            _scheduler.Charge(charge);
        if (chosen is null)
            return started;

        // Outside the lock: the worker owns Current and Progress, and nobody else changes HasCurrent.
        var command = chosen.Current;
        var progress = chosen.Progress;
        var result = Step(chosen.Id, command, ref progress);
        lock (_lock)
        {
            chosen.Progress = progress;
            switch (result.Outcome)
            {
                case StepOutcome.Done:
                    chosen.HasCurrent = false;
                    CompleteLocked(chosen, command);
                    break;
                case StepOutcome.Fail:
                    FailCurrentLocked(chosen, result.Error, result.Address);
                    break;
                case StepOutcome.Fault:
                    FaultLocked(chosen, result);
                    break;
            }
        }
        if (result.Outcome == StepOutcome.Fault)
            _scheduler.Charge(_options.FaultNs);
        return true;
    }

    // Caller holds _lock. Starts the command at the head of c's FIFO: finishes it at once unless it is a valid LAUNCH.
    private void StartLocked(GpuContextSlot c, in GpuCommandEntry entry)
    {
        var cmd = entry.Command;
        if (c.State == GpuContextState.Error)
        {
            FinishFailedLocked(c, cmd);
            return;
        }
        if (!c.Valid)
        {
            SetErrorLocked(c, GpuContextError.ContextInvalid, 0);
            FinishFailedLocked(c, cmd);
            return;
        }
        if (!IsWellFormed(entry))
        {
            SetErrorLocked(c, GpuContextError.BadCommand, 0);
            FinishFailedLocked(c, cmd);
            return;
        }
        if (cmd.Opcode == GpuOpcode.Nop)
        {
            CompleteLocked(c, cmd);
            return;
        }
        if (!ArgumentsValid(cmd, out ulong badAddress))
        {
            SetErrorLocked(c, GpuContextError.BadArgument, badAddress);
            FinishFailedLocked(c, cmd);
            return;
        }
        c.Current = cmd;
        c.KernelSpan = _scheduler.Trace.Begin(s_kernelSpan, ((ulong)c.Id << 8) | (ulong)cmd.Kernel, cmd.Arg0, cmd.Arg1);
        c.Progress = new KernelProgress { Pointer = cmd.Kernel == GpuKernel.PointerChase ? cmd.Arg0 : 0 };
        c.HasCurrent = true;
        UpdateStateLocked(c, leaveError: true);
    }

    private static bool IsWellFormed(in GpuCommandEntry entry)
    {
        var cmd = entry.Command;
        if (!entry.ReservedIsZero || (cmd.Flags & ~GpuCommand.DefinedFlags) != 0)
            return false;
        return cmd.Opcode switch
        {
            GpuOpcode.Nop => cmd.Kernel == GpuKernel.None,
            GpuOpcode.Launch => cmd.Kernel is >= GpuKernel.Fill and <= GpuKernel.PointerChase,
            _ => false,
        };
    }

    // Whether the LAUNCH's arguments are usable: aligned pointers, a non-zero count whose byte length neither
    // overflows nor wraps the address, non-overlapping copy ranges. Else the offending pointer.
    private static bool ArgumentsValid(in GpuCommand cmd, out ulong bad)
    {
        bad = 0;
        return cmd.Kernel switch
        {
            GpuKernel.Fill => Array(cmd.Arg0, cmd.Arg1, 4, ref bad),
            GpuKernel.Copy => Array(cmd.Arg0, cmd.Arg2, 1, ref bad) && Array(cmd.Arg1, cmd.Arg2, 1, ref bad)
                && NoOverlap(cmd.Arg0, cmd.Arg1, cmd.Arg2, ref bad),
            GpuKernel.Saxpy => Array(cmd.Arg0, cmd.Arg2, 4, ref bad) && Array(cmd.Arg1, cmd.Arg2, 4, ref bad),
            GpuKernel.ReduceSum => Array(cmd.Arg0, 1, 8, ref bad) && Array(cmd.Arg1, cmd.Arg2, 4, ref bad),
            GpuKernel.AtomicAdd => Array(cmd.Arg0, cmd.Arg1, 8, ref bad),
            GpuKernel.PointerChase => Array(cmd.Arg0, cmd.Arg1, 8, ref bad, countOnly: true) && Array(cmd.Arg2, 1, 8, ref bad),
            _ => false,
        };

        static bool Array(ulong pointer, ulong count, ulong size, ref ulong bad, bool countOnly = false)
        {
            bad = pointer;
            if (pointer % size != 0 || count == 0)
                return false;
            if (countOnly)
                return true;
            return count <= ulong.MaxValue / size && pointer + (count * size) - 1 >= pointer;
        }

        static bool NoOverlap(ulong dst, ulong src, ulong bytes, ref ulong bad)
        {
            bad = dst;
            return dst + bytes <= src || src + bytes <= dst;
        }
    }

    // ---- kernels: one step each, inside one MMU use ------------------------------------------------------------------

    // Runs on the worker thread only, without _lock. May sleep (walks, virtual-time charge, the test gate).
    private StepResult Step(ushort ctx, in GpuCommand cmd, ref KernelProgress p)
    {
        ulong cost = 0;
        var use = _mmu.BeginUse();
        StepResult result;
        try
        {
            result = cmd.Kernel switch
            {
                GpuKernel.Fill => Fill(use, ctx, cmd, ref p, ref cost),
                GpuKernel.Copy => Copy(use, ctx, cmd, ref p, ref cost),
                GpuKernel.Saxpy => Saxpy(use, ctx, cmd, ref p, ref cost),
                GpuKernel.ReduceSum => ReduceSum(use, ctx, cmd, ref p, ref cost),
                GpuKernel.AtomicAdd => AtomicAdd(use, ctx, cmd, ref p, ref cost),
                _ => PointerChase(use, ctx, cmd, ref p, ref cost),
            };
        }
        finally
        {
            // Before the charge: an invalidation waiting on this use completes now, not after the modelled time.
            _mmu.EndUse(use);
        }
        if (cost != 0)
            _scheduler.Charge(cost);
        return result;
    }

    private StepResult Fill(TranslationUse use, ushort ctx, in GpuCommand cmd, ref KernelProgress p, ref ulong cost)
    {
        ulong address = cmd.Arg0 + (p.Done * 4);
        if (!TryMap(use, ctx, address, Access.Write, (cmd.Arg1 - p.Done) * 4, ref cost, out var span, out var fail))
            return fail;
        PassGate();
        MemoryMarshal.Cast<byte, uint>(span).Fill((uint)cmd.Arg2);
        p.Done += (ulong)span.Length / 4;
        return p.Done == cmd.Arg1 ? StepResult.Done : StepResult.Continue;
    }

    private StepResult Copy(TranslationUse use, ushort ctx, in GpuCommand cmd, ref KernelProgress p, ref ulong cost)
    {
        ulong left = cmd.Arg2 - p.Done;
        if (!TryMap(use, ctx, cmd.Arg1 + p.Done, Access.Read, left, ref cost, out var from, out var fail))
            return fail;
        if (!TryMap(use, ctx, cmd.Arg0 + p.Done, Access.Write, (ulong)from.Length, ref cost, out var to, out fail))
            return fail;
        PassGate();
        from[..to.Length].CopyTo(to);
        p.Done += (ulong)to.Length;
        return p.Done == cmd.Arg2 ? StepResult.Done : StepResult.Continue;
    }

    private StepResult Saxpy(TranslationUse use, ushort ctx, in GpuCommand cmd, ref KernelProgress p, ref ulong cost)
    {
        ulong left = (cmd.Arg2 - p.Done) * 4;
        ulong y = cmd.Arg0 + (p.Done * 4);
        if (!TryMap(use, ctx, cmd.Arg1 + (p.Done * 4), Access.Read, left, ref cost, out var xs, out var fail))
            return fail;
        if (!TryMap(use, ctx, y, Access.Read, (ulong)xs.Length, ref cost, out _, out fail))
            return fail;
        if (!TryMap(use, ctx, y, Access.Write, (ulong)xs.Length, ref cost, out var ys, out fail))
            return fail;
        PassGate();
        float a = BitConverter.Int32BitsToSingle((int)(uint)cmd.Arg3);
        var xf = MemoryMarshal.Cast<byte, float>(xs);
        var yf = MemoryMarshal.Cast<byte, float>(ys);
        SaxpySpan(a, xf, yf);
        p.Done += (ulong)yf.Length;
        return p.Done == cmd.Arg2 ? StepResult.Done : StepResult.Continue;
    }

    // y[i] = a·x[i] + y[i], whole vectors first: a multiply and an add per lane (no fused multiply-add), so every
    // element rounds exactly as the scalar expression does.
    private static void SaxpySpan(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && y.Length >= Vector<float>.Count)
        {
            var va = new Vector<float>(a);
            var xv = MemoryMarshal.Cast<float, Vector<float>>(x[..y.Length]);
            var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
            for (int v = 0; v < yv.Length; v++)
                yv[v] = (va * xv[v]) + yv[v];
            i = yv.Length * Vector<float>.Count;
        }
        for (; i < y.Length; i++)
            y[i] = (a * x[i]) + y[i];
    }

    private StepResult ReduceSum(TranslationUse use, ushort ctx, in GpuCommand cmd, ref KernelProgress p, ref ulong cost)
    {
        if (p.Storing)
            return Store(use, ctx, cmd.Arg0, p.Sum, ref cost);
        if (!TryMap(use, ctx, cmd.Arg1 + (p.Done * 4), Access.Read, (cmd.Arg2 - p.Done) * 4, ref cost, out var span, out var fail))
            return fail;
        PassGate();
        ulong sum = p.Sum;
        foreach (uint v in MemoryMarshal.Cast<byte, uint>(span))
            sum += v;
        p.Sum = sum;
        p.Done += (ulong)span.Length / 4;
        p.Storing = p.Done == cmd.Arg2;
        return StepResult.Continue;
    }

    private StepResult AtomicAdd(TranslationUse use, ushort ctx, in GpuCommand cmd, ref KernelProgress p, ref ulong cost)
    {
        if (!TryMap(use, ctx, cmd.Arg0 + (p.Done * 8), Access.Atomic, (cmd.Arg1 - p.Done) * 8, ref cost, out var span, out var fail))
            return fail;
        PassGate();
        var elements = MemoryMarshal.Cast<byte, ulong>(span);
        for (int i = 0; i < elements.Length; i++)
            Interlocked.Add(ref elements[i], cmd.Arg2);
        p.Done += (ulong)elements.Length;
        return p.Done == cmd.Arg1 ? StepResult.Done : StepResult.Continue;
    }

    private StepResult PointerChase(TranslationUse use, ushort ctx, in GpuCommand cmd, ref KernelProgress p, ref ulong cost)
    {
        if (p.Storing)
            return Store(use, ctx, cmd.Arg2, p.Pointer, ref cost);
        bool gated = false;
        for (int n = 0; n < _options.PointerChaseStepsPerChunk && p.Done < cmd.Arg1; n++)
        {
            if ((p.Pointer & 7) != 0)
                return StepResult.Fail(GpuContextError.BadArgument, p.Pointer);
            if (!TryMap(use, ctx, p.Pointer, Access.Read, 8, ref cost, out var span, out var fail))
                return fail;
            if (!gated)
            {
                PassGate();
                gated = true;
            }
            p.Pointer = BinaryPrimitives.ReadUInt64LittleEndian(span);
            p.Done++;
        }
        p.Storing = p.Done == cmd.Arg1;
        return StepResult.Continue;
    }

    // The result store of ReduceSum and PointerChase: one aligned u64.
    private StepResult Store(TranslationUse use, ushort ctx, ulong address, ulong value, ref ulong cost)
    {
        if (!TryMap(use, ctx, address, Access.Write, 8, ref cost, out var span, out var fail))
            return fail;
        PassGate();
        BinaryPrimitives.WriteUInt64LittleEndian(span, value);
        return StepResult.Done;
    }

    /// <summary>
    /// Translates the page of <paramref name="address"/> once and returns its bytes from there, at most
    /// <paramref name="length"/> and at most to the end of the page; adds their transfer time to
    /// <paramref name="cost"/>. A failed translation becomes a replayable fault (not present, permission) or a context
    /// error (address out of range, malformed table, leaf outside memory). Worker thread only; may yield on a walk.
    /// </summary>
    private bool TryMap(TranslationUse use, ushort ctx, ulong address, Access access, ulong length, ref ulong cost,
        out Span<byte> span, out StepResult fail)
    {
        span = default;
        fail = default;
        var t = _mmu.Translate(use, ctx, address, access);
        if (!t.IsOk)
        {
            fail = t.Status switch
            {
                TranslationStatus.NotPresent => StepResult.Fault(address, FaultAccess(access), GpuFaultReason.NotPresent),
                TranslationStatus.Permission => StepResult.Fault(address, FaultAccess(access), GpuFaultReason.Permission),
                TranslationStatus.OutOfRange when address >= DevicePageTable.VirtualAddressLimit =>
                    StepResult.Fail(GpuContextError.AddressOutOfRange, address),
                _ => StepResult.Fail(GpuContextError.BadPageTable, address),
            };
            return false;
        }
        var port = t.Aperture == Aperture.Vram ? _vram : _system;
        int want = (int)Math.Min(length, t.Length);
        if (!port.TryGetSpan(t.Address, want, write: access != Access.Read, out span) || span.Length != want)
        {
            fail = StepResult.Fail(GpuContextError.BadPageTable, address);
            return false;
        }
        ulong bytesPerNs = t.Aperture == Aperture.Vram ? _options.VramBytesPerNs : _options.SystemBytesPerNs;
        if (bytesPerNs != 0)
            cost += ((ulong)want + bytesPerNs - 1) / bytesPerNs;
        return true;
    }

    private static GpuFaultAccess FaultAccess(Access access) => access switch
    {
        Access.Read => GpuFaultAccess.Read,
        Access.Write => GpuFaultAccess.Write,
        _ => GpuFaultAccess.Atomic,
    };

    // Runs on the worker thread only, inside a use: the test gate.
    private void PassGate()
    {
        if (Volatile.Read(ref _gateCountdown) < 0 || Interlocked.Decrement(ref _gateCountdown) != -1)
            return;
        Volatile.Write(ref _gateHeld, 1);
        _gateQueue.WaitUntil(this, static e => Volatile.Read(ref e._gateReleased) != 0);
        Volatile.Write(ref _gateHeld, 0);
    }

    // ---- completions, errors and faults (worker thread, under _lock; none of them sleeps) -----------------------------

    // Caller holds _lock. Records a fault of c's running command and stalls c.
    private void FaultLocked(GpuContextSlot c, in StepResult fault)
    {
        Debug.Assert(_lock.IsHeldByCurrentThread);
        // The generation before the record is visible: a replay the driver writes after reading it resumes us.
        c.StallGeneration = Interlocked.Read(ref _replayGeneration);
        c.Stalled = true;
        c.CancelRequested = false;
        c.FaultAddress = fault.Address;
        UpdateStateLocked(c, leaveError: true);
        uint sequence = ++_faultSequence;
        _scheduler.Trace.Record(s_faultEvent, c.Id, fault.Address, (ulong)fault.Access);
        var record = new GpuFaultRecord(fault.Address, _scheduler.Clock.Now, c.Id, fault.Access, GpuEngineId.Compute, fault.Reason, sequence);
        Span<byte> bytes = stackalloc byte[GpuFaultRecord.Size];
        record.Write(bytes);
        if (FaultBuffer.HasRoom && FaultBuffer.TryPost(bytes, out _))
        {
            _model.Signal(GpuRegisters.IntFault);
            return;
        }
        // Full (or not configured): counted; the context still stalls and faults again on the next replay.
        _faultOverflows++;
    }

    // Caller holds _lock. Fails c's running command with error (the context stops), writing its fence.
    private void FailCurrentLocked(GpuContextSlot c, GpuContextError error, ulong address)
    {
        var cmd = c.Current;
        c.HasCurrent = false;
        c.Stalled = false;
        c.CancelRequested = false;
        SetErrorLocked(c, error, address);
        FinishFailedLocked(c, cmd);
    }

    // Caller holds _lock. Fails every command c holds (running, stalled, queued) with error, fences written in order.
    private void FailAllLocked(GpuContextSlot c, GpuContextError error, ulong address)
    {
        if (!c.HasWork)
        {
            UpdateStateLocked(c, leaveError: true);
            return;
        }
        SetErrorLocked(c, error, address);
        if (c.HasCurrent)
        {
            c.HasCurrent = false;
            c.Stalled = false;
            c.CancelRequested = false;
            FinishFailedLocked(c, c.Current);
        }
        while (c.Fifo.TryDequeue(out var entry))
            FinishFailedLocked(c, entry.Command);
    }

    // Caller holds _lock. Puts c in the error state (the first error is the one reported) and raises CONTEXT_ERROR.
    private void SetErrorLocked(GpuContextSlot c, GpuContextError error, ulong address)
    {
        if (c.State == GpuContextState.Error)
            return;
        c.State = GpuContextState.Error;
        c.Error = error;
        c.ErrorAddress = address;
        _scheduler.Trace.Record(s_contextErrorEvent, c.Id, (ulong)error, address);
        _model.Signal(GpuRegisters.IntContextError);
    }

    // Caller holds _lock.
    private void FinishFailedLocked(GpuContextSlot c, in GpuCommand cmd) => CompleteLocked(c, cmd);

    // Caller holds _lock. A command finished (ok or failed): fence, counter, interrupt.
    private void CompleteLocked(GpuContextSlot c, in GpuCommand cmd)
    {
        if (cmd.FenceAddress != 0)
        {
            if ((cmd.FenceAddress & 7) != 0 || !_system.TryWriteUInt64(cmd.FenceAddress, cmd.FenceValue))
                _model.DeviceError(GpuDeviceError.WriteBack, GpuRegisters.StatusCommandError, cmd.FenceAddress);
        }
        c.Completed++;
        if (c.KernelSpan.IsValid)
        {
            c.KernelSpan.End(c.State == GpuContextState.Error ? 1UL : 0UL);   // 0 completed, 1 failed, 2 reset
            c.KernelSpan = default;
            var tlb = _mmu.Stats;
            long lookups = tlb.Hits + tlb.Misses;
            _scheduler.Trace.Record(s_tlbCounter, lookups == 0 ? 0UL : (ulong)(tlb.Hits * 100 / lookups));
        }
        UpdateStateLocked(c, leaveError: true);
        if ((cmd.Flags & GpuCommandFlags.Interrupt) != 0)
            _model.Signal(GpuRegisters.IntFence);
    }

    // Caller holds _lock. Recomputes CTX_STATUS.STATE from what c holds (an error state stays until VALID is set).
    private static void UpdateStateLocked(GpuContextSlot c, bool leaveError)
    {
        if (leaveError && c.State == GpuContextState.Error && c.Error != GpuContextError.None)
            return;
        c.State = c.Stalled ? GpuContextState.Stalled : c.HasWork ? GpuContextState.Running : GpuContextState.Idle;
    }

    // Runs on the worker thread only: discards every command (no fence writes), invalidates every context, flushes
    // the compute TLB. Nothing is in flight: the worker is between steps.
    private void DoReset()
    {
        int discarded = 0;
        Span<byte> entry = stackalloc byte[GpuCommand.Size];
        while (CommandRing.TryDrain(entry, out _, out _))
            discarded++;
        if (CommandRing.Status.State == RingState.Stopped)
            CommandRing.Recover();   // a disabled ring (ENABLE cleared) stays disabled
        lock (_lock)
        {
            foreach (var c in _contexts)
            {
                bool hadWork = c.HasWork || c.InvalidatePending;
                discarded += c.Fifo.Count + (c.HasCurrent ? 1 : 0);
                c.Fifo.Clear();
                c.HasCurrent = false;
                c.KernelSpan.End(2);   // discarded by the reset
                c.KernelSpan = default;
                c.Stalled = false;
                c.CancelRequested = false;
                c.InvalidatePending = false;
                c.FailCurrentQuietly = false;
                c.Valid = false;
                _mmu.Roots.Clear(c.Id);
                _model.ContextInvalidatedByReset(c.Id);
                if (hadWork)
                {
                    c.State = GpuContextState.Error;
                    c.Error = GpuContextError.DeviceReset;
                    c.ErrorAddress = 0;
                }
                else if (c.State != GpuContextState.Error)
                {
                    c.State = GpuContextState.Idle;
                }
            }
        }
        _mmu.Tlb.InvalidateAll();
        _scheduler.Trace.Record(s_resetEvent, (ulong)discarded);
        Volatile.Write(ref _resetsDone, _resetsDone + 1);
        _model.ComputeResetDone();
    }

    /// <summary>Adapts the worker's callbacks to the engine.</summary>
    private sealed class Handler(GpuComputeEngine engine) : IEngineWorkHandler<GpuWork>
    {
        public void Run(GpuWork item)
        {
            if (item == GpuWork.Kick)
                Volatile.Write(ref engine._kickPending, 0);
            engine.RunLoop();
        }

        public void Abort(GpuWork item)
        {
            if (item == GpuWork.Reset)
                engine.DoReset();
        }
    }
}
