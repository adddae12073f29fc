using System.Text;
using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Simulation;
using static HmmEmu.Hardware.Tests.Edu.EduRegisters;

namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>
/// One seed of the edu fuzz: a deterministic machine, then <c>ops</c> random operations drawn from a
/// <see cref="SimRandom"/> of the kernel — valid copies whose data is checked, random and malformed descriptors,
/// random BAR accesses of any offset and size, resets during DMA, TLB invalidations, remapping, interrupt masking,
/// completion-ring overflow, bogus ring and page-table configuration, function-level resets — and the accounting of
/// every descriptor the driver submitted.
/// </summary>
/// <remarks>
/// <para>Accounting: every request gets a completion record exactly once, except a request that was outstanding when
/// the fuzz itself broke the ring protocol (a raw write to SQ_TAIL or CQ_HEAD, or a bogus ring configuration: the
/// device then legitimately runs stale slots or drops records). Such requests are "disrupted": at most they may be
/// lost or echoed; the driver's recovery then restarts the rings. Resets, disables, function-level resets, bad
/// descriptors, faults and interrupt masking are not disruptions: across them the exactly-once rule holds.</para>
/// <para>Data: a copy into a check lane must complete with the source's bytes, or abort or fault (when its
/// translation was tampered with) with the source's bytes up to the bytes it reports done.</para>
/// </remarks>
internal sealed class EduFuzzRun
{
    private const int Lanes = 8;
    private const int LaneBytes = 4 * 4096;
    private const int ScratchPages = 16;
    private const ulong Page = 4096;
    private const ulong VaCheck = 0x40_0000_0000;
    private const ulong VaScratch = 0x50_0000_0000;
    private const ulong VaHole = 0x60_0000_0000;

    private readonly ulong _seed;
    private readonly int _ops;
    private readonly EduMachine _m;
    private readonly SimRandom _rng;
    private readonly SortedDictionary<ulong, Tracked> _tracked = [];
    private readonly SortedDictionary<ulong, int> _records = [];      // cookie -> records seen (written in interrupt context)
    private readonly Lock _recordsLock = new();
    private readonly LaneCheck?[] _lanes = new LaneCheck?[Lanes];
    private DmaCoherentBuffer _checkSrc = null!;
    private DmaCoherentBuffer _checkDst = null!;
    private DmaCoherentBuffer _scratch = null!;
    private DmaCoherentBuffer _junk = null!;
    private DmaCoherentBuffer _emptyTable = null!;
    private int _op;
    private bool _paused;
    private bool _irqDirty;
    private bool _ptDirty;

    public EduFuzzRun(ulong seed, int ops)
    {
        _seed = seed;
        _ops = ops;
        _m = EduMachine.Create(SchedulerMode.Deterministic, seed);
        _rng = _m.Kernel.CreateRandom("edu-fuzz");
    }

    /// <summary>What the run did, for the test's output.</summary>
    public FuzzCounters Counters { get; } = new();

    /// <summary>The hash of the run's trace (same seed, same hash), valid after <see cref="Run"/>.</summary>
    public ulong TraceHash { get; private set; }

    /// <summary>Runs the seed; throws (with the seed and the operation index in the message) on the first violation.</summary>
    public void Run()
    {
        try
        {
            _m.Run(Body);
            TraceHash = _m.Kernel.Trace.Hash;
        }
        catch
        {
            // Tearing down a failed simulation fails too; the first failure is the one to report.
            try
            {
                _m.Dispose();
            }
            catch (InvalidOperationException)
            {
            }
            throw;
        }
        _m.Dispose();
    }

    private void Body()
    {
        _m.Start();
        var d = _m.Driver;
        d.RecordObserved = OnRecord;
        _checkSrc = d.AllocBuffer(Lanes * LaneBytes);
        _checkDst = d.AllocBuffer(Lanes * LaneBytes);
        _scratch = d.AllocBuffer(ScratchPages * Page);
        _junk = d.AllocBuffer(Page);
        _emptyTable = d.AllocBuffer(Page);
        var junk = _junk.Span;
        for (int i = 0; i < junk.Length; i += 8)
            BitConverter.TryWriteBytes(junk[i..], _rng.NextUInt64());
        for (ulong p = 0; p < Lanes * LaneBytes / Page; p++)
        {
            Require(d.Map(VaCheck + (p * Page), _checkSrc.BusAddress + (p * Page), PtePermissions.Read) == Errno.Ok, "map check source");
            Require(d.Map(VaCheck + (Lanes * LaneBytes) + (p * Page), _checkDst.BusAddress + (p * Page), PtePermissions.ReadWrite) == Errno.Ok, "map check destination");
        }
        for (ulong p = 0; p < ScratchPages; p++)
            Require(d.Map(VaScratch + (p * Page), _scratch.BusAddress + (p * Page), PtePermissions.ReadWrite) == Errno.Ok, "map scratch");

        for (_op = 0; _op < _ops; _op++)
        {
            Step();
            Counters.Operations++;
            _m.Scheduler.Yield();
            CheckLanes();
        }
        Finish();
    }

    private void Step()
    {
        int pick = _rng.NextInt(1000);   // per mille
        switch (pick)
        {
            case < 170: CheckedCopy(wait: true); break;
            case < 260: CheckedCopy(wait: false); break;
            case < 410: RandomDescriptor(); break;
            case < 550: RawRead(); break;
            case < 690: RawWrite(); break;
            case < 730: DriverReset(); break;
            case < 760: RawReset(); break;
            case < 810: Invalidate(); break;
            case < 860: Remap(); break;
            case < 890: TogglePause(); break;
            case < 895: Flood(); break;
            case < 905: BogusRings(); break;
            case < 925: BogusPageTable(); break;
            case < 935: FunctionLevelReset(); break;
            case < 980: _m.Scheduler.Sleep(_rng.NextUInt64(20_000)); break;
            default: ToggleMask(); break;
        }
    }

    // --- operations -------------------------------------------------------------------------------------------------

    private void CheckedCopy(bool wait)
    {
        int lane = FreeLane();
        if (lane < 0)
            return;
        if (wait)
            MakeLive();
        bool viaMmu = _rng.Chance(0.5);
        if (viaMmu && _ptDirty)
            RestorePageTable();
        int len = 1 + _rng.NextInt(LaneBytes);
        int srcOff = _rng.NextInt(LaneBytes - len + 1), dstOff = _rng.NextInt(LaneBytes - len + 1);
        int salt = _rng.NextInt(256);
        var src = _checkSrc.Span.Slice(lane * LaneBytes, LaneBytes);
        for (int i = 0; i < src.Length; i++)
            src[i] = (byte)((i * 31) + salt + (i >> 9));
        _checkDst.Span.Slice(lane * LaneBytes, LaneBytes).Fill(0xCC);
        ulong srcAddr = (ulong)((lane * LaneBytes) + srcOff);
        ulong dstAddr = (ulong)((lane * LaneBytes) + dstOff);
        var desc = viaMmu
            ? DmaDescriptor.Copy(VaCheck + srcAddr, VaCheck + (Lanes * LaneBytes) + dstAddr, (uint)len, 0, DmaFlags.InterruptOnCompletion, EduDriver.Context)
            : DmaDescriptor.Copy(_checkSrc.BusAddress + srcAddr, _checkDst.BusAddress + dstAddr, (uint)len, 0, DmaFlags.InterruptOnCompletion);
        EduRequest? request;
        if (wait)
        {
            request = _m.Driver.Submit(desc);
        }
        else if (_m.Driver.TrySubmit(desc, out request) != Errno.Ok)
        {
            Counters.Refused++;
            return;
        }
        var t = Track(request!);
        _lanes[lane] = new LaneCheck(t, lane, srcOff, dstOff, len, viaMmu);
        if (!wait)
            return;
        request!.Wait();
        CheckLanes();
        Counters.CheckedCopies++;
    }

    private void RandomDescriptor()
    {
        ushort asid = _rng.NextInt(10) switch
        {
            < 4 => 0,
            < 8 => EduDriver.Context,
            8 => (ushort)(2 + _rng.NextInt(6)),
            _ => (ushort)_rng.NextUInt64(ushort.MaxValue + 1UL),
        };
        ulong scratchEnd;
        ulong dst;
        bool bounded;
        switch (_rng.NextInt(6))
        {
            case 0 or 1 when asid == 0:
                dst = _scratch.BusAddress + _rng.NextUInt64(ScratchPages * Page);
                scratchEnd = _scratch.BusAddress + (ScratchPages * Page);
                bounded = true;
                break;
            case 0 or 1 when asid == EduDriver.Context:
                dst = VaScratch + _rng.NextUInt64(ScratchPages * Page);
                scratchEnd = VaScratch + (ScratchPages * Page);
                bounded = false;     // past the scratch window the table has no entries: a fault, not a stray write
                break;
            case 2:
                dst = (_m.Kernel.Memory.TotalPages * Page) + _rng.NextUInt64(1UL << 30);
                scratchEnd = 0;
                bounded = false;
                break;
            case 3:
                dst = VaHole + _rng.NextUInt64(1UL << 20);
                scratchEnd = 0;
                bounded = false;
                break;
            case 4:
                dst = (1UL << 48) + _rng.NextUInt64(1UL << 40);
                scratchEnd = 0;
                bounded = false;
                break;
            default:
                dst = _rng.NextUInt64() | (1UL << 62);
                scratchEnd = 0;
                bounded = false;
                break;
        }
        ulong src = _rng.NextInt(4) switch
        {
            0 => _checkSrc.BusAddress + _rng.NextUInt64(Lanes * LaneBytes),
            1 => VaCheck + _rng.NextUInt64(Lanes * LaneBytes),
            2 => _rng.NextUInt64(256),
            _ => _rng.NextUInt64(),
        };
        uint len = _rng.NextInt(8) switch
        {
            0 => 0,
            1 => (64u << 20) + 1 + (uint)_rng.NextUInt64(1UL << 30),
            2 when !bounded => (uint)_rng.NextUInt64(1UL << 32),
            _ => 1 + (uint)_rng.NextUInt64(64 * 1024),
        };
        if (bounded && len != 0 && len <= (64u << 20) && dst + len > scratchEnd)
            len = (uint)(scratchEnd - dst);
        var flags = (DmaFlags)(_rng.Chance(0.7) ? _rng.NextUInt64(8) : _rng.NextUInt64(1UL << 16));
        var desc = new DmaDescriptor(src, dst, len, flags, asid, 0);
        if (_m.Driver.TrySubmit(desc, out var request) == Errno.Ok)
        {
            Track(request!);
            Counters.RandomDescriptors++;
        }
        else
        {
            Counters.Refused++;
        }
    }

    private void RawRead()
    {
        var (offset, size) = RandomAccess();
        ((IMmio)_m.Device).Read(offset, size);
        Counters.RawReads++;
    }

    private void RawWrite()
    {
        var (offset, size) = RandomAccess();
        ulong value = _rng.NextInt(4) switch
        {
            0 => 0,
            1 => ~0UL,
            2 => _rng.NextUInt64(256),
            _ => _rng.NextUInt64(),
        };
        Counters.RawWrites++;
        bool ringIndex = size == 4 && offset is SqTail or CqHead;
        if (ringIndex)
        {
            Disrupt();
            Counters.Disruptions++;
        }
        if (size == 4)
            _m.Driver.Write32(offset, (uint)value);
        else if (size == 8)
            _m.Driver.Write64(offset, value);
        else
            ((IMmio)_m.Device).Write(offset, size, value);
        if (offset is >= IntMask and < IntMask + 4 || offset >= MsixControl)
            _irqDirty = true;
        if (offset is >= PtBase and < PtBase + (8 * Contexts))
            TaintPageTable();
        if (ringIndex || offset is >= Control and < Control + 4)
            Recover();
    }

    private void DriverReset()
    {
        Require(_m.Driver.Reset() == Errno.Ok, "Reset");
        Counters.Resets++;
    }

    private void RawReset()
    {
        _m.Driver.Write32(Control, ControlEnable | ControlReset);
        Counters.Resets++;
    }

    private void Invalidate()
    {
        uint command = _rng.NextInt(6) switch
        {
            0 or 1 => TlbCmdRange,
            2 => TlbCmdAsid,
            3 => TlbCmdAll,
            _ => (uint)_rng.NextUInt64(8),
        };
        ushort asid = _rng.Chance(0.8) ? EduDriver.Context : (ushort)_rng.NextUInt64(16);
        ulong address = _rng.Chance(0.5) ? VaCheck + _rng.NextUInt64(2 * Lanes * LaneBytes) : _rng.NextUInt64();
        ulong size = _rng.Chance(0.1) ? 0 : _rng.Chance(0.9) ? 1 + _rng.NextUInt64(64 * 1024) : _rng.NextUInt64();
        var err = _m.Driver.Invalidate(command, asid, address, size);
        Require(err is Errno.Ok or Errno.EINVAL, $"Invalidate returned {err}");
        Counters.Invalidations++;
    }

    private void Remap()
    {
        ulong va = VaScratch + (_rng.NextUInt64(ScratchPages) * Page);
        Errno err;
        if (_rng.Chance(0.5))
        {
            err = _m.Driver.Unmap(va);
            Require(err is Errno.Ok or Errno.ENOENT or Errno.EINVAL, $"Unmap returned {err}");
        }
        else
        {
            var permissions = (PtePermissions)(1 + _rng.NextInt(7));
            err = _m.Driver.Map(va, _scratch.BusAddress + (_rng.NextUInt64(ScratchPages) * Page), permissions);
            Require(err is Errno.Ok or Errno.EINVAL, $"Map returned {err}");
        }
        Counters.Remaps++;
    }

    private void TogglePause()
    {
        _paused = !_paused;
        _m.Driver.PauseConsumption(_paused);
    }

    private void ToggleMask()
    {
        _m.Driver.MaskVector(_rng.NextInt(Vectors), masked: _rng.Chance(0.5));
        _irqDirty = true;
    }

    // Many doorbells without consuming completions: fill every credit with consumption paused, then ring the doorbell
    // past the driver's producer (the device runs stale slots and overflows the completion ring), then recover.
    private void Flood()
    {
        if (!_paused)
            TogglePause();
        for (int i = 0; i < EduDriver.RingEntries; i++)
        {
            ulong dst = _scratch.BusAddress + _rng.NextUInt64((ScratchPages - 1) * Page);
            var desc = DmaDescriptor.Copy(_checkSrc.BusAddress, dst, (uint)(1 + _rng.NextInt(4096)), 0, DmaFlags.InterruptOnCompletion);
            if (_m.Driver.TrySubmit(desc, out var request) != Errno.Ok)
            {
                Counters.Refused++;
                break;
            }
            Track(request!);
        }
        _m.Scheduler.Sleep(50_000);
        Disrupt();
        Counters.Disruptions++;
        uint head = _m.Driver.Read32(SqHead);
        for (int i = 0; i < 4; i++)
        {
            _m.Driver.Write32(SqTail, (head + 1 + (uint)_rng.NextInt(EduDriver.RingEntries)) & ((2 * EduDriver.RingEntries) - 1));
            _m.Scheduler.Sleep(5_000);
        }
        Counters.Floods++;
        Recover();
        TogglePause();
    }

    private void BogusRings()
    {
        Disrupt();
        Counters.Disruptions++;
        var d = _m.Driver;
        d.Write32(Control, 0);
        d.Write64(SqBase, BogusRingBase());
        d.Write32(SqSize, BogusRingSize());
        ulong cqBase = BogusRingBase();
        d.Write64(CqBase, cqBase);
        // The device writes a completion ring: one at the junk page must stay inside it (128 records).
        d.Write32(CqSize, cqBase == _junk.BusAddress ? 1u << _rng.NextInt(8) : BogusRingSize());
        d.Write32(Control, ControlEnable);
        d.Write32(SqTail, (uint)_rng.NextInt(8));
        _m.Scheduler.Sleep(_rng.NextUInt64(20_000));
        Counters.BogusConfigs++;
        Recover();
    }

    private void BogusPageTable()
    {
        ulong ram = _m.Kernel.Memory.TotalPages * Page;
        ulong value = _rng.NextInt(6) switch
        {
            0 => 0,
            1 => DevicePte.Table(Aperture.System, _emptyTable.BusAddress).Value | (1UL << (6 + _rng.NextInt(6))),
            2 => DevicePte.Table(Aperture.System, _emptyTable.BusAddress).Value | DevicePte.LeafBit,
            3 => DevicePte.Table(Aperture.System, ram + (_rng.NextUInt64(1UL << 20) * Page)).Value,
            4 => DevicePte.Table(Aperture.System, _emptyTable.BusAddress).Value,
            _ => _rng.NextUInt64() | (1UL << 63),
        };
        _m.Driver.Write64(PtBaseOf(EduDriver.Context), value);
        TaintPageTable();
        Counters.BogusConfigs++;
    }

    private void FunctionLevelReset()
    {
        Errno err;
        if (_rng.Chance(0.5))
        {
            err = _m.Driver.FunctionLevelReset();
        }
        else
        {
            _m.Bus.FunctionLevelReset(EduMachine.Slot);
            err = _m.Driver.ResetDone();
        }
        Require(err == Errno.Ok, $"recovery after a function-level reset returned {err}");
        _irqDirty = false;
        _ptDirty = false;
        Counters.FunctionLevelResets++;
    }

    // --- helpers ----------------------------------------------------------------------------------------------------

    private (ulong Offset, int Size) RandomAccess()
    {
        int size = _rng.NextInt(10) switch
        {
            < 6 => 4,
            < 9 => 8,
            _ => 1 + _rng.NextInt(16),
        };
        var regs = _m.Device.Bar0.Registers;
        ulong offset = _rng.NextInt(5) switch
        {
            < 3 => regs[_rng.NextInt(regs.Count)].Offset + (size == 4 && _rng.Chance(0.2) ? 4UL : 0),
            3 => _rng.NextUInt64(Bar0Size + 64) & ~3UL,
            _ => _rng.NextUInt64(),
        };
        return (offset, size);
    }

    private ulong BogusRingBase() => _rng.NextInt(6) switch
    {
        0 => 0,
        1 => _junk.BusAddress,
        2 => _junk.BusAddress + 1 + _rng.NextUInt64(31),
        3 => (_m.Kernel.Memory.TotalPages * Page) + (_rng.NextUInt64(1024) * Page),
        4 => ~0UL - _rng.NextUInt64(4096),
        _ => _rng.NextUInt64(),
    };

    private uint BogusRingSize() => _rng.NextInt(5) switch
    {
        0 => 0,
        1 => 1u << _rng.NextInt(8),
        2 => 3 + (uint)_rng.NextInt(1000),
        3 => 1u << (16 + _rng.NextInt(16)),
        _ => (uint)_rng.NextUInt64(1UL << 32),
    };

    // Interrupts must flow and completions be consumed before anything waits for a completion.
    private void MakeLive()
    {
        if (_paused)
            TogglePause();
        if (_irqDirty)
        {
            _m.Driver.RestoreInterrupts();
            _irqDirty = false;
        }
    }

    private void RestorePageTable()
    {
        Require(_m.Driver.RestorePageTableBase() == Errno.Ok, "RestorePageTableBase");
        _ptDirty = false;
    }

    private void Recover()
    {
        Require(_m.Driver.Recover() == Errno.Ok, "Recover");
        _irqDirty = false;      // recovery reprograms the interrupt configuration and the page-table base
        _ptDirty = false;
    }

    private void TaintPageTable()
    {
        _ptDirty = true;
        foreach (var lane in _lanes)
        {
            if (lane is { ViaMmu: true })
                lane.Tracked.Tainted = true;
        }
    }

    private void Disrupt()
    {
        foreach (var t in _tracked.Values)
        {
            if (!t.Request.IsFinished)
                t.Disrupted = true;
        }
    }

    private int FreeLane()
    {
        int start = _rng.NextInt(Lanes);
        for (int i = 0; i < Lanes; i++)
        {
            int lane = (start + i) % Lanes;
            if (_lanes[lane] is null)
                return lane;
        }
        return -1;
    }

    private Tracked Track(EduRequest request)
    {
        var t = new Tracked(request, _op);
        _tracked.Add(request.Cookie, t);
        return t;
    }

    private void OnRecord(DmaCompletion record)
    {
        lock (_recordsLock)
        {
            _records.TryGetValue(record.Cookie, out int n);
            _records[record.Cookie] = n + 1;
        }
    }

    // Verifies every lane whose copy has finished, and frees it.
    private void CheckLanes()
    {
        for (int i = 0; i < Lanes; i++)
        {
            if (_lanes[i] is not { } lane || !lane.Tracked.Request.IsFinished)
                continue;
            _lanes[i] = null;
            var t = lane.Tracked;
            var r = t.Request;
            if (r.Lost)
            {
                Require(t.Disrupted, $"checked copy 0x{r.Cookie:x} (op {t.Op}) was lost without a disruption");
                continue;
            }
            var status = r.Result.Status;
            bool allowedFailure = status is DmaStatus.Aborted || t.Disrupted ||
                (t.Tainted && status is DmaStatus.NotPresent or DmaStatus.Permission or DmaStatus.BadTable or DmaStatus.OutOfRange);
            Require(status == DmaStatus.Completed || allowedFailure,
                $"checked copy 0x{r.Cookie:x} (op {t.Op}, {(lane.ViaMmu ? "mmu" : "bus")}, {lane.Length} bytes) ended {status} " +
                $"after {r.Result.BytesDone} bytes, fault 0x{r.Result.FaultAddress:x}");
            int done = status == DmaStatus.Completed ? lane.Length : (int)Math.Min(r.Result.BytesDone, (ulong)lane.Length);
            Require(status != DmaStatus.Completed || r.Result.BytesDone == (ulong)lane.Length,
                $"checked copy 0x{r.Cookie:x} completed with {r.Result.BytesDone} of {lane.Length} bytes");
            var src = _checkSrc.Span.Slice((lane.Lane * LaneBytes) + lane.SourceOffset, done);
            var dst = _checkDst.Span.Slice((lane.Lane * LaneBytes) + lane.DestinationOffset, done);
            if (!t.Disrupted)
            {
                int bad = src.SequenceEqual(dst) ? -1 : FirstDifference(src, dst);
                Require(bad < 0, $"checked copy 0x{r.Cookie:x} (op {t.Op}, {status}) has wrong data at byte {bad} of {done}");
            }
            Counters.VerifiedBytes += done;
        }
    }

    private static int FirstDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] != b[i])
                return i;
        }
        return -1;
    }

    // The final reset, the copy that must still work, and the accounting.
    private void Finish()
    {
        MakeLive();
        Recover();
        _m.Bus.SynchronizeInterrupts();
        CheckLanes();
        Require(_lanes.All(l => l is null), "a checked copy is still unfinished after the final recovery");

        foreach (bool viaMmu in new[] { false, true })
        {
            CheckedCopyFinal(viaMmu);
        }
        _m.Bus.SynchronizeInterrupts();

        var report = new StringBuilder();
        int clean = 0, disrupted = 0;
        foreach (var (cookie, t) in _tracked)
        {
            Require(t.Request.IsFinished, $"request 0x{cookie:x} (op {t.Op}) never finished");
            int records;
            lock (_recordsLock)
                _records.TryGetValue(cookie, out records);
            if (t.Disrupted)
            {
                disrupted++;
                if (t.Request.Lost)
                    Counters.LostDisrupted++;
                continue;
            }
            clean++;
            if (records != 1 || t.Request.Lost)
            {
                report.Append($"request 0x{cookie:x} (op {t.Op}, {t.Request.Descriptor}) had {records} completion record(s)" +
                    $"{(t.Request.Lost ? " and was finished as lost" : "")}; ");
            }
        }
        Require(report.Length == 0, "exactly-once violated: " + report);
        Counters.Clean += clean;
        Counters.Disrupted += disrupted;
        var stats = _m.Device.Engine.Stats;
        Counters.Dropped += stats.DroppedCompletions;
        Counters.Stalls += stats.CompletionRingStalls;
        Counters.BusErrors += _m.Device.Bar0.BusErrors;
        Counters.BadRegisterWrites += _m.Device.BadRegisterWrites;
        Counters.Recoveries += _m.Driver.Recoveries;
        Require(_m.Kernel.Warnings.Count == 0, "kernel warnings: " + string.Join("; ", _m.Kernel.Warnings));
    }

    private void CheckedCopyFinal(bool viaMmu)
    {
        int lane = 0;
        const int len = LaneBytes - 100;
        var src = _checkSrc.Span.Slice(lane * LaneBytes, LaneBytes);
        for (int i = 0; i < src.Length; i++)
            src[i] = (byte)((i * 13) + 7);
        _checkDst.Span.Slice(lane * LaneBytes, LaneBytes).Clear();
        var r = viaMmu
            ? _m.Driver.Copy(VaCheck + 50, VaCheck + (Lanes * LaneBytes) + 30, len, EduDriver.Context)
            : _m.Driver.Copy(_checkSrc.BusAddress + 50, _checkDst.BusAddress + 30, len);
        Track(r);
        Require(!r.Lost && r.Result.Status == DmaStatus.Completed,
            $"the copy after the final reset ({(viaMmu ? "mmu" : "bus")}) ended {(r.Lost ? "lost" : r.Result.Status.ToString())}");
        Require(src.Slice(50, len).SequenceEqual(_checkDst.Span.Slice(30, len)), "the copy after the final reset moved wrong data");
    }

    private void Require(bool condition, string what)
    {
        if (!condition)
            throw new FuzzFailure($"edu fuzz seed {_seed}, op {_op} of {_ops}: {what}. Replay: new EduFuzzRun({_seed}, {_ops}).Run().");
    }

    /// <summary>A submitted request and what the fuzz did to it.</summary>
    private sealed class Tracked(EduRequest request, int op)
    {
        public EduRequest Request { get; } = request;

        public int Op { get; } = op;

        public bool Disrupted { get; set; }

        public bool Tainted { get; set; }
    }

    /// <summary>A checked copy occupying a lane until it is verified.</summary>
    private sealed record LaneCheck(Tracked Tracked, int Lane, int SourceOffset, int DestinationOffset, int Length, bool ViaMmu);
}
