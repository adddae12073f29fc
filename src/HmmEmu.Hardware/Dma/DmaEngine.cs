using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HmmEmu.Hardware.Engines;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Rings;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Dma;

/// <summary>
/// A ring-fed DMA copy engine. The driver writes <see cref="DmaDescriptor"/>s into the submission ring and rings the
/// doorbell (<see cref="Doorbell"/>); the engine's worker (an <see cref="EngineWorker{T}"/>) wakes, reads entries in
/// order, moves the data page span by page span through an <see cref="ITranslator"/>, advances the submission
/// consumer, posts a <see cref="DmaCompletion"/> to the completion ring and raises interrupts through an
/// <see cref="IDmaInterruptSink"/>.
/// </summary>
/// <remarks>
/// <para>Guarantee: every descriptor the driver submits gets exactly one completion record: completed, failed,
/// skipped or aborted. The engine starts a descriptor only when the completion ring has a free slot, so normal
/// operation never overflows it; only a reset that must abort more descriptors than there are free slots can, and
/// then each record it could not post is counted and reported as <see cref="RingError.Overflow"/>.</para>
/// <para>Reset (<see cref="Reset"/>) stops the transfer in flight at its next page boundary (aborted, with the bytes
/// it moved), aborts every descriptor still pending, clears both rings' errors while keeping their indices (so the
/// driver's view stays valid), then raises <see cref="DmaInterrupt.ResetDone"/>; the engine then runs normally.</para>
/// <para>Translation: each descriptor's transfer runs inside one <see cref="TranslationUse"/>, begun before the
/// first translation and ended after the last byte moved, before the completion is posted; an invalidation that
/// covers a page of the transfer therefore completes only after the transfer.</para>
/// <para>Memory: the rings live in the system-memory port; descriptor addresses are translated, then reach the
/// system-memory or VRAM port by aperture. Overlapping source and destination give unspecified data (as memcpy),
/// never an error.</para>
/// </remarks>
public sealed class DmaEngine : IDisposable
{
    private static readonly TraceEventType s_completeEvent = new("dma", "complete", "index", "status", "bytes");
    private static readonly TraceEventType s_resetEvent = new("dma", "reset", "aborted");
    private static readonly TraceEventType s_ringErrorEvent = new("dma", "ring_error", "ring", "error", "index");
    private static readonly TraceSpanType s_transferSpan = new("dma", "transfer", crossThread: false, "source", "destination", "length");

    private readonly Scheduler _scheduler;
    private readonly DmaEngineOptions _options;
    private readonly ITranslator _translator;
    private readonly IMemoryPort _system;
    private readonly IMemoryPort? _vram;
    private readonly IDmaInterruptSink? _interrupts;
    private readonly EngineWorker<DmaCommand> _worker;

    // Written by any thread.
    // 1: the worker stopped because the completion ring was full, and the next consume kicks it. On a line of its own:
    // the driver reads it on every consume, and the worker rarely writes it.
    private PaddedCounter _wantRoom;
    private int _resetsRequested;
    private int _shutdownRequested;
    private long _ringErrors;

    // Written only by the worker thread; read by Stats.
    private int _resetsDone;
    private bool _failedSinceFence;
    private long _descriptors;
    private long _bytes;
    private long _errors;
    private long _aborted;
    private long _skipped;
    private long _stalls;

    /// <summary>Creates the engine, its two (disabled) rings and its worker thread.</summary>
    /// <param name="scheduler">The scheduler the worker runs on (the kernel's).</param>
    /// <param name="name">The engine's name, for traces.</param>
    /// <param name="translator">Translates descriptor addresses; <see cref="BusAddressTranslator"/> for a device without an IOMMU.</param>
    /// <param name="systemMemory">Host RAM as the device sees it; the rings live here.</param>
    /// <param name="vram">The device's VRAM, or null if translations never name it.</param>
    /// <param name="interrupts">Where interrupts go, or null for none.</param>
    /// <param name="options">Limits and timing; <see cref="DmaEngineOptions.Default"/> if null.</param>
    public DmaEngine(
        Scheduler scheduler,
        string name,
        ITranslator translator,
        IMemoryPort systemMemory,
        IMemoryPort? vram = null,
        IDmaInterruptSink? interrupts = null,
        DmaEngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(translator);
        ArgumentNullException.ThrowIfNull(systemMemory);
        options ??= DmaEngineOptions.Default;
        int quantum = options.ChargeQuantumBytes;
        if (quantum < 4096 || (quantum & (quantum - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), quantum,
                "DmaEngineOptions.ChargeQuantumBytes must be a power of two of at least 4096.");
        }
        if (options.IdleSpinRounds < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.IdleSpinRounds, "DmaEngineOptions.IdleSpinRounds must not be negative.");
        if (options.MaxTransferBytes == 0)
            throw new ArgumentOutOfRangeException(nameof(options), 0, "DmaEngineOptions.MaxTransferBytes must be positive.");
        if (vram is not null && vram.Aperture != Aperture.Vram)
            throw new ArgumentException($"The vram port serves aperture {vram.Aperture}; pass a VRAM port (or null).", nameof(vram));
        if (systemMemory.Aperture != Aperture.System)
            throw new ArgumentException($"The systemMemory port serves aperture {systemMemory.Aperture}; pass a system-memory port.", nameof(systemMemory));
        _scheduler = scheduler;
        _options = options;
        _translator = translator;
        _system = systemMemory;
        _vram = vram;
        _interrupts = interrupts;
        Name = name;
        Submission = new SubmissionRing(systemMemory, DmaDescriptor.Size);
        Completion = new CompletionRing(systemMemory, DmaCompletion.Size);
        // A kick (doorbell, consume, ring configure) is the worker's nudge: kicks coalesce, and a kick costs the driver
        // one flag rather than a channel write.
        _worker = new EngineWorker<DmaCommand>(scheduler, "dma " + name, new Handler(this), options.IdleSpinRounds,
            nudgeItem: DmaCommand.Kick);
    }

    /// <summary>The engine's name.</summary>
    public string Name { get; }

    /// <summary>The submission ring (status and indices for the device's registers; ring the doorbell through <see cref="Doorbell"/>).</summary>
    public SubmissionRing Submission { get; }

    /// <summary>The completion ring (status and indices for the device's registers; consume through <see cref="CompletionConsumed"/>).</summary>
    public CompletionRing Completion { get; }

    /// <summary>Resets requested so far (each <see cref="Reset"/> call).</summary>
    public int ResetsRequested => Volatile.Read(ref _resetsRequested);

    /// <summary>Resets finished so far; a reset is done when this reaches the value <see cref="ResetsRequested"/> had when it was requested.</summary>
    public int ResetsCompleted => Volatile.Read(ref _resetsDone);

    /// <summary>Whether a reset is requested and not finished.</summary>
    public bool ResetPending => ResetsCompleted != ResetsRequested;

    /// <summary>The worker that runs the engine.</summary>
    internal EngineWorker<DmaCommand> Worker => _worker;

    /// <summary>A snapshot of the counters.</summary>
    public DmaEngineStats Stats => new(
        Volatile.Read(ref _descriptors),
        Volatile.Read(ref _bytes),
        Volatile.Read(ref _errors),
        Volatile.Read(ref _aborted),
        Volatile.Read(ref _skipped),
        Completion.DroppedRecords,
        Interlocked.Read(ref _ringErrors),
        Volatile.Read(ref _resetsDone),
        Volatile.Read(ref _stalls));

    private bool AbortRequested =>
        Volatile.Read(ref _resetsRequested) != _resetsDone || Volatile.Read(ref _shutdownRequested) != 0;

    /// <summary>
    /// Programs the submission ring (register write). Guest input: a bad base or size stops the ring and raises the
    /// error interrupt; a ring with pending descriptors refuses (<see cref="RingError.Busy"/>: reset first).
    /// Never throws or sleeps.
    /// </summary>
    public RingError ConfigureSubmissionRing(ulong baseAddress, uint entryCount) =>
        ReportConfig(0, Submission.Configure(baseAddress, entryCount));

    /// <summary>
    /// Programs the completion ring (register write). Guest input: as <see cref="ConfigureSubmissionRing"/>; a ring
    /// holding records the driver has not consumed refuses with <see cref="RingError.Busy"/>. Never throws or sleeps.
    /// </summary>
    public RingError ConfigureCompletionRing(ulong baseAddress, uint entryCount)
    {
        var error = ReportConfig(1, Completion.Configure(baseAddress, entryCount));
        if (error == RingError.None)
            Kick();
        return error;
    }

    /// <summary>
    /// The submission doorbell (register write of the new producer index). Wakes the worker. Guest input: a bad index
    /// stops the submission ring and raises the error interrupt. Ignored after shutdown. Never throws or sleeps.
    /// </summary>
    public bool Doorbell(uint producer)
    {
        if (Volatile.Read(ref _shutdownRequested) != 0)
            return false;
        if (!Submission.Doorbell(producer))
        {
            RingFault(0, Submission.Status);
            return false;
        }
        Kick();
        return true;
    }

    /// <summary>
    /// The driver's write of the completion-ring consumer index, freeing slots (and waking the worker only if it stopped
    /// for want of them). Guest input: a bad index stops the completion ring and raises the error interrupt. Never throws or sleeps.
    /// </summary>
    public bool CompletionConsumed(uint consumer)
    {
        if (!Completion.Consume(consumer))
        {
            RingFault(1, Completion.Status);
            return false;
        }
        // Only a worker that stopped for room needs waking. The fence orders the consume before the read (the worker
        // fences between its request and its second look at the ring), so one of the two sees the other.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _wantRoom.Value) != 0 && Interlocked.Exchange(ref _wantRoom.Value, 0) != 0)
            Kick();
        return true;
    }

    /// <summary>
    /// Requests a reset (register write); returns at once. The worker aborts the transfer in flight at its next page
    /// boundary and every pending descriptor, clears ring errors, and raises <see cref="DmaInterrupt.ResetDone"/>.
    /// Never throws or sleeps.
    /// </summary>
    public void Reset()
    {
        if (Volatile.Read(ref _shutdownRequested) != 0)
            return;
        Interlocked.Increment(ref _resetsRequested);
        if (!_worker.Post(DmaCommand.Reset))
            Interlocked.Decrement(ref _resetsRequested);
    }

    /// <summary>
    /// Shuts the engine down: doorbells are ignored from now on, the transfer in flight is aborted, every pending
    /// descriptor gets an aborted completion, and the worker exits. May sleep: call it from a simulated thread (or
    /// any thread in threaded mode); <see cref="Dispose"/> does the same from anywhere.
    /// </summary>
    public void Shutdown()
    {
        RequestShutdown();
        _worker.Stop(WorkerStopMode.Drain);
    }

    /// <summary>Shuts the engine down as <see cref="Shutdown"/> does; from a host thread in deterministic mode it runs the simulation until the worker has exited.</summary>
    public void Dispose()
    {
        RequestShutdown();
        _worker.Dispose();
    }

    private void RequestShutdown()
    {
        if (Interlocked.Exchange(ref _shutdownRequested, 1) == 0)
            _worker.Post(DmaCommand.Shutdown);
    }

    private void Kick() => _worker.Nudge();

    private RingError ReportConfig(ulong ring, RingError error)
    {
        if (error != RingError.None)
        {
            Interlocked.Increment(ref _ringErrors);
            _scheduler.Trace.Record(s_ringErrorEvent, ring, (ulong)error, 0);
            Raise(DmaInterrupt.Error);
        }
        return error;
    }

    private void RingFault(ulong ring, RingStatus status)
    {
        Interlocked.Increment(ref _ringErrors);
        _scheduler.Trace.Record(s_ringErrorEvent, ring, (ulong)status.Error, status.ErrorIndex);
        Raise(DmaInterrupt.Error);
    }

    private void Raise(DmaInterrupt cause) => _interrupts?.Raise(cause);

    // Runs on the worker thread only: processes descriptors until the ring is empty or stopped, the completion ring
    // is full, or an abort is requested.
    private void ProcessRing()
    {
        Span<byte> entry = stackalloc byte[DmaDescriptor.Size];
        while (!AbortRequested)
        {
            if (!Completion.HasRoom)
            {
                // Ask the driver's next consume for a kick, then look again (a full fence in between), so that a
                // consume between the first look and the request is not missed.
                Interlocked.Exchange(ref _wantRoom.Value, 1);
                if (!Completion.HasRoom)
                {
                    if (Submission.HasWork)
                        _stalls++;
                    return; // CompletionConsumed, a completion-ring configure or a reset kicks us again
                }
                Volatile.Write(ref _wantRoom.Value, 0);
            }
            var fetch = Submission.TryPeek(entry, out var ticket);
            if (fetch == RingFetch.Faulted)
            {
                // The entry stays pending: a reset aborts it with the rest, so it still gets its one completion.
                RingFault(0, Submission.Status);
                return;
            }
            if (fetch != RingFetch.Entry)
                return;
            Execute(DmaDescriptor.Read(entry), ticket);
        }
    }

    // Runs on the worker thread only.
    private void Execute(in DmaDescriptor d, RingTicket ticket)
    {
        var span = _scheduler.Trace.Begin(s_transferSpan, d.Source, d.Destination, d.Length);
        _scheduler.Charge(_options.DescriptorNs);
        ulong done = 0, faultAddress = 0;
        Access faultAccess = 0;
        DmaStatus status;
        bool fence = (d.Flags & DmaFlags.Fence) != 0;
        if (AbortRequested)
        {
            status = DmaStatus.Aborted;
        }
        else if (!IsWellFormed(d))
        {
            status = DmaStatus.BadDescriptor;
        }
        else if (fence && _failedSinceFence)
        {
            status = DmaStatus.Skipped;
        }
        else
        {
            if (fence)
                _failedSinceFence = false;
            status = Transfer(d, out done, out faultAddress, out faultAccess);
        }
        if (status != DmaStatus.Completed)
            _failedSinceFence = true;
        Submission.Advance(ticket);
        Post(new DmaCompletion(d.Cookie, ticket.Index, status, faultAccess, done, faultAddress), d.Flags);
        span.End(done);
    }

    private bool IsWellFormed(in DmaDescriptor d) =>
        d.Length != 0
        && d.Length <= _options.MaxTransferBytes
        && (d.Flags & ~DmaDescriptor.DefinedFlags) == 0
        && ((d.Flags & DmaFlags.Fill) == 0 || d.Source <= byte.MaxValue);

    /// <summary>
    /// Moves the descriptor's bytes inside one translation use: each page of source and destination is translated
    /// once (<see cref="ITranslator.TranslateRun"/>: a device MMU answers for the following pages it already holds
    /// in the same call), and spans that turn out to be adjacent in backing memory on both sides are merged into one
    /// run (up to the charge quantum) and moved with a single <see cref="Span{T}.CopyTo"/>, so a physically contiguous
    /// transfer copies at memcpy speed. Runs on the worker thread only; may sleep (charges virtual time after each
    /// run, a point where a reset can arrive).
    /// </summary>
    private DmaStatus Transfer(in DmaDescriptor d, out ulong done, out ulong faultAddress, out Access faultAccess)
    {
        done = 0;
        faultAddress = 0;
        faultAccess = 0;
        bool fill = (d.Flags & DmaFlags.Fill) != 0;
        ulong remaining = d.Length, src = d.Source, dst = d.Destination;
        ulong srcAt = 0, dstAt = 0, srcLeft = 0, dstLeft = 0;
        IMemoryPort? srcPort = null, dstPort = null;
        int quantum = _options.ChargeQuantumBytes;
        var run = new Run(fill, (byte)d.Source);
        Span<byte> runFrom = default, runTo = default;
        var use = _translator.BeginUse();
        try
        {
            DmaStatus status = DmaStatus.Completed;
            while (remaining > 0)
            {
                if (AbortRequested)
                {
                    status = DmaStatus.Aborted;
                    break;
                }
                if (!fill && srcLeft == 0)
                {
                    status = Resolve(use, d.Asid, src, Access.Read, remaining, out srcPort, out srcAt, out srcLeft);
                    if (status != DmaStatus.Completed)
                    {
                        (faultAddress, faultAccess) = (src, Access.Read);
                        break;
                    }
                }
                if (dstLeft == 0)
                {
                    status = Resolve(use, d.Asid, dst, Access.Write, remaining, out dstPort, out dstAt, out dstLeft);
                    if (status != DmaStatus.Completed)
                    {
                        (faultAddress, faultAccess) = (dst, Access.Write);
                        break;
                    }
                }
                // At most a charge quantum per step, so a reset still lands every quantum however long the span.
                ulong want = Math.Min(Math.Min(remaining, dstLeft), (ulong)quantum);
                if (!fill)
                    want = Math.Min(want, srcLeft);
                if (!dstPort!.TryGetSpan(dstAt, (int)Math.Min(want, int.MaxValue), write: true, out var to))
                {
                    (status, faultAddress, faultAccess) = (DmaStatus.OutOfRange, dst, Access.Write);
                    break;
                }
                Span<byte> from = default;
                if (!fill)
                {
                    if (!srcPort!.TryGetSpan(srcAt, to.Length, write: false, out from))
                    {
                        (status, faultAddress, faultAccess) = (DmaStatus.OutOfRange, src, Access.Read);
                        break;
                    }
                    to = to[..from.Length];
                    src += (ulong)from.Length;
                    srcAt += (ulong)from.Length;
                    srcLeft -= (ulong)from.Length;
                }
                int n = to.Length;
                dst += (ulong)n;
                dstAt += (ulong)n;
                dstLeft -= (ulong)n;
                remaining -= (ulong)n;
                if (runTo.Length != 0 && runTo.Length + n <= quantum && Follows(runTo, to) && (fill || Follows(runFrom, from)))
                {
                    runTo = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(runTo), runTo.Length + n);
                    if (!fill)
                        runFrom = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(runFrom), runFrom.Length + n);
                }
                else
                {
                    done += MoveRun(ref run, runFrom, runTo);
                    runFrom = from;
                    runTo = to;
                }
            }
            done += MoveRun(ref run, runFrom, runTo);
            if (run.Uncharged > 0)
                _scheduler.Charge(_options.TransferNs(run.Uncharged));
            return status;
        }
        finally
        {
            // After the last byte moved and before the completion is posted: an invalidation waiting on this use
            // may complete only now.
            _translator.EndUse(use);
        }
    }

    // Whether next starts exactly where run ends in backing memory. Two distinct managed arrays are never adjacent
    // (each has a header before its data), so adjacency means the same buffer and merging the spans is sound.
    private static bool Follows(Span<byte> run, Span<byte> next) =>
        Unsafe.AreSame(ref Unsafe.Add(ref MemoryMarshal.GetReference(run), run.Length), ref MemoryMarshal.GetReference(next));

    // Moves one merged run and charges virtual time once a quantum of bytes has moved. Returns the bytes moved.
    private ulong MoveRun(ref Run run, Span<byte> from, Span<byte> to)
    {
        if (to.IsEmpty)
            return 0;
        if (run.Fill)
        {
            // Zero (most fills: fresh device pages) is a plain memset; profiled, Span<byte>.Fill(0) ran several
            // times slower on the copy engine's zero-fill of new VRAM pages.
            if (run.Value == 0)
                to.Clear();
            else
                to.Fill(run.Value);
        }
        else
            from.CopyTo(to);
        _bytes += to.Length;
        run.Uncharged += (ulong)to.Length;
        if (run.Uncharged >= (ulong)_options.ChargeQuantumBytes)
        {
            _scheduler.Charge(_options.TransferNs(run.Uncharged));
            run.Uncharged = 0;
        }
        return (ulong)to.Length;
    }

    // Runs once per translated run (a page, or the pages the translator could join to it) per side: inlined into
    // Transfer, with the failure mapping out of line.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private DmaStatus Resolve(TranslationUse use, ushort asid, ulong address, Access access, ulong remaining,
        out IMemoryPort? port, out ulong at, out ulong left)
    {
        var t = _translator.TranslateRun(use, asid, address, access, remaining);
        port = null;
        at = 0;
        left = 0;
        if (!t.IsOk)
            return FailureStatus(t.Status);
        port = t.Aperture == Aperture.Vram ? _vram : _system;
        if (port is null)
            return DmaStatus.OutOfRange;
        at = t.Address;
        // A translation covers at least the rest of its page; a zero length means exactly that.
        left = t.Length != 0 ? t.Length : 4096 - (t.Address & 4095);
        return DmaStatus.Completed;
    }

    private static DmaStatus FailureStatus(TranslationStatus status) => status switch
    {
        TranslationStatus.NotPresent => DmaStatus.NotPresent,
        TranslationStatus.Permission => DmaStatus.Permission,
        TranslationStatus.BadTable => DmaStatus.BadTable,
        _ => DmaStatus.OutOfRange,
    };

    // Runs on the worker thread only: posts the record, counts it, traces it and raises its interrupts.
    private void Post(in DmaCompletion completion, DmaFlags flags)
    {
        Span<byte> record = stackalloc byte[DmaCompletion.Size];
        completion.Write(record);
        bool posted = Completion.TryPost(record, out _);
        switch (completion.Status)
        {
            case DmaStatus.Completed: _descriptors++; break;
            case DmaStatus.Aborted: _aborted++; break;
            case DmaStatus.Skipped: _skipped++; break;
            default: _errors++; break;
        }
        _scheduler.Trace.Record(s_completeEvent, completion.Index, (ulong)completion.Status, completion.BytesDone);
        if (!posted)
        {
            RingFault(1, Completion.Status);
            return;
        }
        if ((flags & DmaFlags.InterruptOnCompletion) != 0)
            Raise(DmaInterrupt.Completion);
        if (completion.Status is not (DmaStatus.Completed or DmaStatus.Aborted))
            Raise(DmaInterrupt.Error);
    }

    // Runs on the worker thread only: gives every pending descriptor its aborted completion.
    private int AbortPending()
    {
        Span<byte> entry = stackalloc byte[DmaDescriptor.Size];
        int count = 0;
        while (Submission.TryDrain(entry, out uint index, out bool readable))
        {
            var d = readable ? DmaDescriptor.Read(entry) : default;
            Post(new DmaCompletion(d.Cookie, index, DmaStatus.Aborted, 0, 0, 0), d.Flags);
            count++;
        }
        return count;
    }

    // Runs on the worker thread only.
    private void DoReset()
    {
        Completion.Recover();
        int aborted = AbortPending();
        Submission.Recover();
        _failedSinceFence = false;
        Volatile.Write(ref _resetsDone, _resetsDone + 1);
        _scheduler.Trace.Record(s_resetEvent, (ulong)aborted);
        Raise(DmaInterrupt.ResetDone);
    }

    // Runs on the worker thread only.
    private void DoShutdown()
    {
        Submission.Disable();
        AbortPending();
    }

    /// <summary>The state of one transfer's copy runs: fill or copy, the fill byte, bytes moved but not yet charged.</summary>
    private struct Run(bool fill, byte value)
    {
        public readonly bool Fill = fill;
        public readonly byte Value = value;
        public ulong Uncharged;
    }

    /// <summary>Adapts the worker's callbacks to the engine without making them public members of it.</summary>
    private sealed class Handler(DmaEngine engine) : IEngineWorkHandler<DmaCommand>
    {
        public void Run(DmaCommand item)
        {
            switch (item)
            {
                case DmaCommand.Kick:
                    engine.ProcessRing();
                    break;
                case DmaCommand.Reset:
                    engine.DoReset();
                    engine.ProcessRing();
                    break;
                case DmaCommand.Shutdown:
                    engine.DoShutdown();
                    break;
            }
        }

        public void Abort(DmaCommand item)
        {
            if (item == DmaCommand.Reset)
                engine.DoReset();
            else if (item == DmaCommand.Shutdown)
                engine.DoShutdown();
        }
    }
}
