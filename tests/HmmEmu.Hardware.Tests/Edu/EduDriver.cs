using System.Buffers.Binary;
using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Rings;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Locking;
using static HmmEmu.Hardware.Tests.Edu.EduRegisters;

namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>
/// The driver of the edu test device, written only against <see cref="PciDev"/> (BAR0, two vectors, coherent DMA
/// memory) and the register map in <see cref="EduRegisters"/>. It owns a submission and a completion ring of
/// <see cref="RingEntries"/> entries, a device page table for address space <see cref="Context"/>, and answers
/// completions in its DMA interrupt handler.
/// </summary>
/// <remarks>
/// <para>Locks: <c>_ctrl</c> (mutex) serialises process-context programming (submit, reset, recovery, TLB commands);
/// <c>_lock</c> (spinlock, irq-safe) guards the ring state shared with the interrupt handlers; <c>_ptLock</c>
/// (mutex) guards the page table. Order: <c>_ptLock</c> → <c>_ctrl</c> → <c>_lock</c>.</para>
/// <para>Credits: at most <see cref="RingEntries"/> requests are outstanding (submitted, record not consumed), so the
/// completion ring can always hold a record for each of them, even when a reset aborts them all.</para>
/// <para>Recovery: when the error handler finds a ring stopped it queues <see cref="Recover"/> on the system work
/// queue: reset, drain every record, finish what is still outstanding as lost, reprogram, enable.</para>
/// </remarks>
internal sealed class EduDriver : IPciDriver
{
    /// <summary>Entries per ring.</summary>
    public const int RingEntries = 64;

    /// <summary>The address-space id whose page table the driver builds.</summary>
    public const ushort Context = 1;

    /// <summary>High bits of every cookie the driver hands out.</summary>
    public const ulong CookieTag = 0xED00_0000_0000_0000UL;

    private const uint IndexMask = (2 * RingEntries) - 1;
    private const int PollLimit = 4_000_000;
    private const ulong PollNs = 200;
    private const int MaxFailedRecoveries = 3;

    private readonly HostKernel _kernel;
    private readonly KSpinLock _lock;
    private readonly KMutex _ctrl;
    private readonly KMutex _ptLock;
    private readonly WaitQueue _space;
    private readonly WorkItem _recoverWork;
    private readonly SortedDictionary<ulong, EduRequest> _outstanding = [];       // under _lock
    private readonly SortedDictionary<ulong, DmaCoherentBuffer> _tables = [];      // under _ptLock: table pages by bus address
    private PciDev? _dev;
    private PciBar? _bar;
    private DmaCoherentBuffer? _sq;
    private DmaCoherentBuffer? _cq;
    private DmaCoherentBuffer? _root;
    private uint _sqTail;          // under _lock
    private uint _cqHead;          // under _lock
    private bool _paused;          // under _lock
    private bool _online;          // under _lock: the driver's ring indices match the device's
    private int _outstandingCount; // written under _lock
    private long _nextCookie;
    private volatile bool _removing;
    private long _dmaInterrupts;
    private long _errorInterrupts;
    private long _recoveries;
    private long _lost;
    private long _foreign;
    private long _anomalies;
    private long _refused;
    private long _invalidationPolls;
    private int _failedRecoveries;

    /// <summary>Creates the driver for <paramref name="kernel"/>.</summary>
    public EduDriver(HostKernel kernel)
    {
        _kernel = kernel;
        _lock = new KSpinLock(kernel, "edu.ring_lock");
        _ctrl = new KMutex(kernel, "edu.ctrl");
        _ptLock = new KMutex(kernel, "edu.pt_lock");
        _space = new WaitQueue(kernel, "edu ring space");
        _recoverWork = new WorkItem("edu recover", () =>
        {
            // A device that fails recovery again and again is left alone (no recovery storm); an explicit Recover
            // call still tries.
            if (!_removing && Volatile.Read(ref _failedRecoveries) < MaxFailedRecoveries)
                Recover();
        });
    }

    /// <inheritdoc />
    public string Name => "edu";

    /// <inheritdoc />
    public IReadOnlyList<PciDeviceId> IdTable { get; } = [new(EduDevice.Vendor, EduDevice.Device)];

    /// <summary>Test hook: sees every completion record the driver consumes, in interrupt context under the ring lock.</summary>
    public Action<DmaCompletion>? RecordObserved { get; set; }

    /// <summary>The bound function, or null.</summary>
    public PciDev? Dev => _dev;

    /// <summary>DMA-vector interrupts handled.</summary>
    public long DmaInterrupts => Interlocked.Read(ref _dmaInterrupts);

    /// <summary>Error-vector interrupts handled.</summary>
    public long ErrorInterrupts => Interlocked.Read(ref _errorInterrupts);

    /// <summary>Recoveries run (reset, drain, reprogram).</summary>
    public long Recoveries => Interlocked.Read(ref _recoveries);

    /// <summary>Requests finished as lost: a recovery found no completion record for them.</summary>
    public long LostRequests => Interlocked.Read(ref _lost);

    /// <summary>Records whose cookie named no outstanding request (garbage, or a second record for a cookie).</summary>
    public long ForeignRecords => Interlocked.Read(ref _foreign);

    /// <summary>Times CQ_TAIL read back as an impossible value and the handler left the ring alone.</summary>
    public long Anomalies => Interlocked.Read(ref _anomalies);

    /// <summary>Submissions refused for lack of credits.</summary>
    public long RefusedSubmissions => Interlocked.Read(ref _refused);

    /// <summary>TLB_STATUS reads that found an invalidation not yet drained.</summary>
    public long InvalidationPolls => Interlocked.Read(ref _invalidationPolls);

    /// <summary>Requests outstanding now.</summary>
    public int Outstanding => Volatile.Read(ref _outstandingCount);

    /// <summary>Whether another request can be submitted now.</summary>
    public bool HasSpace => Outstanding < RingEntries;

    private PciBar Bar => _bar ?? throw new InvalidOperationException("edu: the driver is not bound.");

    /// <summary>Checks the identity, allocates the rings and the page-table root, requests both vectors, programs and enables the device. May sleep.</summary>
    public Errno Probe(PciDev dev)
    {
        _dev = dev;
        var bar = dev.BarCount > 0 ? dev.Bar(0) : null;
        if (bar is null || bar.Length < Bar0Size)
            return Errno.ENODEV;
        uint id = bar.Read32(Id);
        if ((id & 0xFFFF) != IdMagic || (id >> 24) == 0)
            return Errno.ENODEV;
        _bar = bar;
        var err = dev.AllocCoherent((ulong)(RingEntries * DmaDescriptor.Size), out _sq);
        if (err == Errno.Ok)
            err = dev.AllocCoherent((ulong)(RingEntries * DmaCompletion.Size), out _cq);
        if (err == Errno.Ok)
            err = dev.AllocCoherent(DevicePageTable.TableSize, out _root);
        if (err != Errno.Ok)
            return err;
        _ptLock.Lock();
        _tables[_root!.BusAddress] = _root;
        _ptLock.Unlock();
        err = dev.RequestIrq(VectorDma, OnDmaInterrupt, "edu-dma");
        if (err == Errno.Ok)
            err = dev.RequestIrq(VectorError, OnErrorInterrupt, "edu-error");
        if (err != Errno.Ok)
            return err;
        _ctrl.Lock();
        try
        {
            return ProgramLocked();
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    /// <summary>Quiesces the device (reset, every request finished), frees both vectors and the DMA memory. May sleep.</summary>
    public void Remove(PciDev dev)
    {
        _removing = true;
        _kernel.SystemWorkQueue.Flush();
        _ctrl.Lock();
        try
        {
            Bar.Write32(Control, ControlReset);
            WaitResetDoneLocked();
            ProcessCompletions(inIrq: false, force: true);
            FinishOutstandingAsLost();
            SetRingsOnline(false);
        }
        finally
        {
            _ctrl.Unlock();
        }
        dev.FreeIrq(VectorDma);
        dev.FreeIrq(VectorError);
        dev.FreeCoherent(_sq!);
        dev.FreeCoherent(_cq!);
        _ptLock.Lock();
        try
        {
            foreach (var table in _tables.Values)
                dev.FreeCoherent(table);
            _tables.Clear();
        }
        finally
        {
            _ptLock.Unlock();
        }
        _sq = _cq = _root = null;
    }

    /// <summary>Allocates <paramref name="bytes"/> of coherent DMA memory for data (freed by the bus at remove). May sleep.</summary>
    public DmaCoherentBuffer AllocBuffer(ulong bytes)
    {
        var err = _dev!.AllocCoherent(bytes, out var buffer);
        if (err != Errno.Ok)
            throw new InvalidOperationException($"edu: could not allocate {bytes} bytes of coherent memory: {err}.");
        return buffer!;
    }

    /// <summary>readl of BAR0. Never sleeps.</summary>
    public uint Read32(ulong offset) => Bar.Read32(offset);

    /// <summary>readq of BAR0. Never sleeps.</summary>
    public ulong Read64(ulong offset) => Bar.Read64(offset);

    /// <summary>writel of BAR0 under the control lock (for tests that program the device by hand). May sleep.</summary>
    public void Write32(ulong offset, uint value)
    {
        _ctrl.Lock();
        try
        {
            Bar.Write32(offset, value);
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    /// <summary>writeq of BAR0 under the control lock. May sleep.</summary>
    public void Write64(ulong offset, ulong value)
    {
        _ctrl.Lock();
        try
        {
            Bar.Write64(offset, value);
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    /// <summary>
    /// Posts <paramref name="descriptor"/> (its cookie replaced by the driver's) and rings the doorbell, without waiting.
    /// EBUSY when every credit is taken, ENODEV once removed. May sleep (takes the control lock).
    /// </summary>
    public Errno TrySubmit(in DmaDescriptor descriptor, out EduRequest? request)
    {
        request = null;
        ulong cookie = CookieTag | (ulong)Interlocked.Increment(ref _nextCookie);
        var d = descriptor with { Cookie = cookie };
        var r = new EduRequest(_kernel, cookie, d);
        _ctrl.Lock();
        try
        {
            if (_removing || _sq is null)
                return Errno.ENODEV;
            uint tail;
            _lock.LockIrqSave();
            try
            {
                if (!_online)
                    return Errno.EIO;
                if (_outstandingCount >= RingEntries)
                {
                    Interlocked.Increment(ref _refused);
                    return Errno.EBUSY;
                }
                d.Write(SqSlot(_sqTail));
                _outstanding.Add(cookie, r);
                Volatile.Write(ref _outstandingCount, _outstanding.Count);
                _sqTail = (_sqTail + 1) & IndexMask;
                tail = _sqTail;
            }
            finally
            {
                _lock.UnlockIrqRestore();
            }
            Bar.Write32(SqTail, tail);
        }
        finally
        {
            _ctrl.Unlock();
        }
        request = r;
        return Errno.Ok;
    }

    /// <summary>Posts <paramref name="descriptor"/>, waiting for a credit if none is free. May sleep.</summary>
    public EduRequest Submit(in DmaDescriptor descriptor)
    {
        while (true)
        {
            var err = TrySubmit(descriptor, out var request);
            if (err == Errno.Ok)
                return request!;
            if (err != Errno.EBUSY)
                throw new InvalidOperationException($"edu: cannot submit: {err}.");
            _space.WaitEvent(this, static d => d.HasSpace);
        }
    }

    /// <summary>
    /// Copies <paramref name="length"/> bytes from <paramref name="source"/> to <paramref name="destination"/>, device
    /// addresses in <paramref name="asid"/> (0: bus addresses), and waits for the completion interrupt. May sleep.
    /// </summary>
    public EduRequest Copy(ulong source, ulong destination, uint length, ushort asid = 0)
    {
        var request = Submit(DmaDescriptor.Copy(source, destination, length, 0, DmaFlags.InterruptOnCompletion, asid));
        request.Wait();
        return request;
    }

    /// <summary>Stops (or resumes) consuming completion records in the interrupt handler; resuming consumes what piled up. May sleep.</summary>
    public void PauseConsumption(bool paused)
    {
        _lock.LockIrqSave();
        _paused = paused;
        _lock.UnlockIrqRestore();
        if (!paused)
            ProcessCompletions(inIrq: false, force: false);
    }

    /// <summary>Resets the DMA engine (CONTROL.RESET), keeping the device enabled, and waits until the reset is done. May sleep.</summary>
    public Errno Reset()
    {
        _ctrl.Lock();
        try
        {
            Bar.Write32(Control, ControlEnable | ControlReset);
            return WaitResetDoneLocked();
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    /// <summary>
    /// Brings the device back to a known state: reset, drain every completion record, finish what has no record as
    /// lost, reprogram rings, page table, interrupts, and enable. May sleep.
    /// </summary>
    public Errno Recover()
    {
        _ctrl.Lock();
        try
        {
            return RecoverLocked();
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    /// <summary>The reset_done callback after a function-level reset issued elsewhere (the bus): recovers. May sleep.</summary>
    public Errno ResetDone() => Recover();

    /// <summary>Function-level reset through the bus with the driver's prepare/done around it. May sleep.</summary>
    public Errno FunctionLevelReset()
    {
        _ctrl.Lock();
        try
        {
            _dev!.FunctionLevelReset();
            return RecoverLocked();
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    /// <summary>Masks or unmasks <paramref name="vector"/> in the MSI-X table. May sleep.</summary>
    public void MaskVector(int vector, bool masked) => Write32(MsixVectorControl(vector), masked ? 1u : 0u);

    /// <summary>Unmasks every interrupt source the driver uses (INT_MASK, function mask, both vectors). May sleep.</summary>
    public void RestoreInterrupts()
    {
        _ctrl.Lock();
        try
        {
            WriteInterruptConfigLocked();
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    /// <summary>Rewrites the context's page-table base and flushes its TLB entries, waiting for the flush. May sleep.</summary>
    public Errno RestorePageTableBase()
    {
        _ctrl.Lock();
        try
        {
            Bar.Write64(PtBaseOf(Context), RootEntry);
            return InvalidateLocked(TlbCmdAsid, Context, 0, 0);
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    /// <summary>
    /// Maps the 4 KiB page at device address <paramref name="va"/> of <see cref="Context"/> to bus address
    /// <paramref name="busAddress"/>, creating tables on the way; replacing a valid mapping invalidates it first.
    /// May sleep.
    /// </summary>
    public Errno Map(ulong va, ulong busAddress, PtePermissions permissions)
    {
        if ((va & (DevicePageTable.PageSize - 1)) != 0 || va >= DevicePageTable.VirtualAddressLimit)
            return Errno.EINVAL;
        _ptLock.Lock();
        try
        {
            var err = LeafSlot(va, create: true, out var table, out int offset);
            if (err != Errno.Ok)
                return err;
            var old = new DevicePte(BinaryPrimitives.ReadUInt64LittleEndian(table.Span[offset..]));
            BinaryPrimitives.WriteUInt64LittleEndian(table.Span[offset..],
                DevicePte.Leaf(Aperture.System, busAddress, permissions).Value);
            return old.IsValid ? Invalidate(TlbCmdRange, Context, va, DevicePageTable.PageSize) : Errno.Ok;
        }
        finally
        {
            _ptLock.Unlock();
        }
    }

    /// <summary>
    /// Unmaps the page at <paramref name="va"/> of <see cref="Context"/> and waits until the device can no longer use
    /// it: the TLB invalidation is done only after DMA that translated the page has drained. May sleep.
    /// </summary>
    public Errno Unmap(ulong va)
    {
        if ((va & (DevicePageTable.PageSize - 1)) != 0 || va >= DevicePageTable.VirtualAddressLimit)
            return Errno.EINVAL;
        _ptLock.Lock();
        try
        {
            var err = LeafSlot(va, create: false, out var table, out int offset);
            if (err != Errno.Ok)
                return err;
            BinaryPrimitives.WriteUInt64LittleEndian(table.Span[offset..], DevicePte.Invalid.Value);
            return Invalidate(TlbCmdRange, Context, va, DevicePageTable.PageSize);
        }
        finally
        {
            _ptLock.Unlock();
        }
    }

    /// <summary>Issues TLB command <paramref name="command"/> and waits for TLB_STATUS.DONE; EINVAL if the device refused it. May sleep.</summary>
    public Errno Invalidate(uint command, ushort asid, ulong address, ulong size)
    {
        _ctrl.Lock();
        try
        {
            return InvalidateLocked(command, asid, address, size);
        }
        finally
        {
            _ctrl.Unlock();
        }
    }

    private ulong RootEntry => DevicePte.Table(Aperture.System, _root!.BusAddress).Value;

    // Caller holds _ctrl. May sleep (polls in virtual time: MMIO is not a yield point).
    private Errno InvalidateLocked(uint command, ushort asid, ulong address, ulong size)
    {
        _ctrl.AssertHeld("edu TLB invalidation");
        var bar = Bar;
        bar.Write32(TlbAsid, asid);
        bar.Write64(TlbAddr, address);
        bar.Write64(TlbSize, size);
        bar.Write32(TlbCmd, command);
        for (int i = 0; ; i++)
        {
            uint status = bar.Read32(TlbStatus);
            if ((status & TlbStatusDone) != 0)
                return (status & TlbStatusError) != 0 ? Errno.EINVAL : Errno.Ok;
            if (i >= PollLimit)
                return Errno.EIO;
            Interlocked.Increment(ref _invalidationPolls);
            _kernel.Scheduler.Sleep(PollNs);
        }
    }

    // Caller holds _ptLock. May sleep (allocates table pages).
    private Errno LeafSlot(ulong va, bool create, out DmaCoherentBuffer table, out int offset)
    {
        _ptLock.AssertHeld("edu page-table walk");
        table = _root!;
        offset = 0;
        for (int level = DevicePageTable.Levels; level > 1; level--)
        {
            int at = DevicePageTable.IndexOf(level, va) * DevicePageTable.EntrySize;
            var entry = new DevicePte(BinaryPrimitives.ReadUInt64LittleEndian(table.Span[at..]));
            if (!entry.IsValid)
            {
                if (!create)
                    return Errno.ENOENT;
                var err = _dev!.AllocCoherent(DevicePageTable.TableSize, out var next);
                if (err != Errno.Ok)
                    return err;
                _tables[next!.BusAddress] = next;
                entry = DevicePte.Table(Aperture.System, next.BusAddress);
                BinaryPrimitives.WriteUInt64LittleEndian(table.Span[at..], entry.Value);
            }
            else if (!entry.IsTable || !_tables.ContainsKey(entry.Address))
            {
                return Errno.EINVAL;
            }
            table = _tables[entry.Address];
        }
        offset = DevicePageTable.IndexOf(1, va) * DevicePageTable.EntrySize;
        return Errno.Ok;
    }

    // Caller holds _ctrl. May sleep.
    private Errno RecoverLocked()
    {
        _ctrl.AssertHeld("edu recover");
        Interlocked.Increment(ref _recoveries);
        Bar.Write32(Control, ControlReset);      // ENABLE cleared, RESET: every pending descriptor is aborted
        var err = WaitResetDoneLocked();
        ProcessCompletions(inIrq: false, force: true);
        // Records the driver could not read (a ring the device was pointed elsewhere for) are discarded, so that the
        // completion ring is empty and the enable below may restart it.
        Bar.Write32(CqHead, Bar.Read32(CqTail));
        FinishOutstandingAsLost();
        if (err == Errno.Ok && !_removing)
            err = ProgramLocked();
        if (err == Errno.Ok)
            Volatile.Write(ref _failedRecoveries, 0);
        else
            Interlocked.Increment(ref _failedRecoveries);
        return err;
    }

    // Caller holds _ctrl. May sleep.
    private Errno WaitResetDoneLocked()
    {
        for (int i = 0; (Bar.Read32(Status) & StatusResetPending) != 0; i++)
        {
            if (i >= PollLimit)
                return Errno.EIO;
            _kernel.Scheduler.Sleep(PollNs);
        }
        return Errno.Ok;
    }

    // Caller holds _ctrl; the device is disabled or idle. Programs everything and enables.
    private Errno ProgramLocked()
    {
        _ctrl.AssertHeld("edu program");
        var bar = Bar;
        // Offline first: a handler still running for the old rings must not move _cqHead between our reset of it
        // and the device's (the enable below restarts both rings at 0).
        SetRingsOnline(false);
        bar.Write32(Control, 0);
        bar.Write64(SqBase, _sq!.BusAddress);
        bar.Write32(SqSize, RingEntries);
        bar.Write64(CqBase, _cq!.BusAddress);
        bar.Write32(CqSize, RingEntries);
        bar.Write64(PtBaseOf(Context), RootEntry);
        bar.Write32(Status, StatusErrors);
        bar.Write32(IntStatus, IntAll);
        WriteInterruptConfigLocked();
        bar.Write32(Control, ControlEnable);
        SetRingsOnline(true);
        // The enable restarted both rings at index 0 (a refused configuration would leave them elsewhere).
        var sq = (RingState)(bar.Read64(SqStatus) & 3);
        var cq = (RingState)(bar.Read64(CqStatus) & 3);
        bool atZero = bar.Read32(SqHead) == 0 && bar.Read32(SqTail) == 0 && bar.Read32(CqHead) == 0 && bar.Read32(CqTail) == 0;
        return sq == RingState.Running && cq == RingState.Running && atZero ? Errno.Ok : Errno.EIO;
    }

    // Caller holds _ctrl. Going online starts the driver's view of both rings at 0, as the enable just did the device's.
    private void SetRingsOnline(bool online)
    {
        _lock.LockIrqSave();
        try
        {
            if (online)
            {
                _sq!.Span.Clear();
                _cq!.Span.Clear();
                _sqTail = 0;
                _cqHead = 0;
            }
            _online = online;
        }
        finally
        {
            _lock.UnlockIrqRestore();
        }
    }

    // Caller holds _ctrl.
    private void WriteInterruptConfigLocked()
    {
        var bar = Bar;
        bar.Write32(IntMask, 0);
        bar.Write32(MsixControl, 0);
        for (int v = 0; v < Vectors; v++)
            bar.Write32(MsixVectorControl(v), 0);
    }

    private void FinishOutstandingAsLost()
    {
        _lock.LockIrqSave();
        try
        {
            foreach (var request in _outstanding.Values)
            {
                request.FinishLost();
                Interlocked.Increment(ref _lost);
            }
            _outstanding.Clear();
            Volatile.Write(ref _outstandingCount, 0);
        }
        finally
        {
            _lock.UnlockIrqRestore();
        }
        _space.WakeUpAll();
    }

    private Span<byte> SqSlot(uint index) => _sq!.Span.Slice((int)(index & (RingEntries - 1)) * DmaDescriptor.Size, DmaDescriptor.Size);

    private Span<byte> CqSlot(uint index) => _cq!.Span.Slice((int)(index & (RingEntries - 1)) * DmaCompletion.Size, DmaCompletion.Size);

    /// <summary>
    /// Consumes every record the device has posted (up to CQ_TAIL): finishes its request, clears the record and the
    /// descriptor slot (so that a stray doorbell can never replay an old descriptor), then writes CQ_HEAD. In
    /// interrupt context it must not sleep: it takes only the spinlock.
    /// </summary>
    private void ProcessCompletions(bool inIrq, bool force)
    {
        int finished = 0;
        if (inIrq)
            _lock.Lock();
        else
            _lock.LockIrqSave();
        try
        {
            if (!_online || (_paused && !force) || _cq is null || _sq is null)
                return;
            uint tail = Bar.Read32(CqTail);
            if (tail > IndexMask || ((tail - _cqHead) & IndexMask) > RingEntries)
            {
                Interlocked.Increment(ref _anomalies);
                return;
            }
            if (tail == _cqHead)
                return;
            while (_cqHead != tail)
            {
                var slot = CqSlot(_cqHead);
                var record = DmaCompletion.Read(slot);
                slot.Clear();
                _cqHead = (_cqHead + 1) & IndexMask;
                RecordObserved?.Invoke(record);
                if (_outstanding.Remove(record.Cookie, out var request))
                {
                    var sqSlot = SqSlot(record.Index);
                    if (BinaryPrimitives.ReadUInt64LittleEndian(sqSlot[DmaDescriptor.CookieOffset..]) == record.Cookie)
                        sqSlot.Clear();
                    request.Finish(record);
                    finished++;
                }
                else
                {
                    Interlocked.Increment(ref _foreign);
                }
            }
            Volatile.Write(ref _outstandingCount, _outstanding.Count);
            Bar.Write32(CqHead, _cqHead);
        }
        finally
        {
            if (inIrq)
                _lock.Unlock();
            else
                _lock.UnlockIrqRestore();
        }
        if (finished > 0)
            _space.WakeUpAll();
    }

    // Runs in interrupt context: must not sleep.
    private IrqReturn OnDmaInterrupt(int vector)
    {
        Interlocked.Increment(ref _dmaInterrupts);
        var bar = Bar;
        uint causes = bar.Read32(IntStatus) & (IntDmaDone | IntResetDone);
        if (causes != 0)
            bar.Write32(IntStatus, causes);
        ProcessCompletions(inIrq: true, force: false);
        return IrqReturn.Handled;
    }

    // Runs in interrupt context: must not sleep. A stopped ring is recovered from process context (work queue).
    private IrqReturn OnErrorInterrupt(int vector)
    {
        Interlocked.Increment(ref _errorInterrupts);
        var bar = Bar;
        uint status = bar.Read32(Status);
        if ((status & StatusErrors) != 0)
            bar.Write32(Status, status & StatusErrors);
        bar.Write32(IntStatus, IntError);
        ProcessCompletions(inIrq: true, force: false);
        var sq = (RingState)(bar.Read64(SqStatus) & 3);
        var cq = (RingState)(bar.Read64(CqStatus) & 3);
        if ((sq == RingState.Stopped || cq == RingState.Stopped) && !_removing)
            _kernel.SystemWorkQueue.Queue(_recoverWork);
        return IrqReturn.Handled;
    }
}
