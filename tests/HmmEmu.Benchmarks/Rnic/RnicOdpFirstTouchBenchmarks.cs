using BenchmarkDotNet.Attributes;
using HmmEmu.Rnic;
using HmmEmu.Rnic.Driver;

namespace HmmEmu.Benchmarks.Rnic;

/// <summary>
/// ODP first touch: a 64 MiB RDMA WRITE from A to B between ODP MRs over fresh, untouched mappings on both sides, so
/// the NIC touches every page first: A's requester faults on the source (the driver's fault handler resolves each
/// 2 MiB window with hmm_range_fault, which allocates and zeroes the pages, DMA-maps them and RESUMEs the QP) and B's
/// responder faults on the target (RNR NAK to A, resolve, RESUME, A retries after the RNR wait). No goal is set; the
/// ratio against the same WRITE between pinned MRs is reported. One invocation per iteration: the iteration setup
/// maps both buffers and registers the ODP MRs, the cleanup checks that every page of both MRs was mapped by faults,
/// deregisters and unmaps; neither is measured. The pinned baseline's MRs are registered once; its iteration setup
/// clears the first and last page of the target and its cleanup checks that the WRITE rewrote them.
/// </summary>
[MedianColumn]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 6)]
public class RnicOdpFirstTouchBenchmarks
{
    private const int Bytes = 64 << 20;
    private const long Pages = Bytes >> 12;
    private const int Seed = 23;

    private RnicBenchMachine _m = null!;
    private ulong _src;
    private ulong _dst;
    private IbvMr _mrA = null!;
    private IbvMr _mrB = null!;
    private long _faultsA;
    private long _faultsB;
    private long _writes;

    [GlobalSetup(Target = nameof(PinnedWrite))]
    public void SetupPinned()
    {
        _m = new RnicBenchMachine(ramBytes: 512UL << 20);
        _src = RnicBenchMachine.Map(_m.A, Bytes);
        _dst = RnicBenchMachine.Map(_m.B, Bytes);
        RnicBenchMachine.FillPattern(_m.A, _src, Bytes, Seed);
        _mrA = _m.RegMr(_m.A, _src, Bytes, onDemand: false);
        _mrB = _m.RegMr(_m.B, _dst, Bytes, onDemand: false);
        PinnedWrite();
        RnicBenchMachine.CheckPattern(_m.B, _dst, Bytes, Seed, "The first pinned 64 MiB WRITE");
        for (int round = 0; round < 2; round++)
        {
            ClearTargetEnds();
            PinnedWrite();
            CheckTargetEnds();
        }
    }

    [GlobalSetup(Target = nameof(OdpFirstTouchWrite))]
    public void SetupOdp()
    {
        _m = new RnicBenchMachine(ramBytes: 512UL << 20);
        // Once with a source the CPU filled (only B's side is first-touched by the NIC): the bytes must arrive.
        MapAndRegister(fillSource: true);
        OdpFirstTouchWrite();
        RnicBenchMachine.CheckPattern(_m.B, _dst, Bytes, Seed, "A 64 MiB WRITE into an untouched ODP MR");
        CheckFaultedAndRelease();
        // One invocation per iteration leaves the fault path at tier-0 JIT code for the first iterations: run it a
        // few times before BenchmarkDotNet starts (as GpuFirstTouchBenchmarks does).
        for (int round = 0; round < 2; round++)
        {
            MapAndRegisterOdp();
            OdpFirstTouchWrite();
            CheckFaultedAndRelease();
        }
        Thread.Sleep(500);          // the background tier-1 compilations finish
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Console.WriteLine($"// {_writes} WRITEs; {_m.Describe()}");
        _m.AssertHealthy();
        _m.Dispose();
    }

    [IterationSetup(Target = nameof(PinnedWrite))]
    public void ClearTargetEnds()
    {
        var zero = new byte[4096];
        _m.B.WriteBytes(_dst, zero);
        _m.B.WriteBytes(_dst + Bytes - 4096, zero);
    }

    [IterationCleanup(Target = nameof(PinnedWrite))]
    public void CheckTargetEnds()
    {
        var expected = new byte[4096];
        var got = new byte[4096];
        foreach (ulong offset in (ReadOnlySpan<ulong>)[0, Bytes - 4096])
        {
            _m.A.ReadBytes(_src + offset, expected);
            _m.B.ReadBytes(_dst + offset, got);
            if (!got.AsSpan().SequenceEqual(expected))
                throw new InvalidOperationException($"The pinned WRITE did not rewrite the target page at +0x{offset:x}.");
        }
    }

    [IterationSetup(Target = nameof(OdpFirstTouchWrite))]
    public void MapAndRegisterOdp() => MapAndRegister(fillSource: false);

    [IterationCleanup(Target = nameof(OdpFirstTouchWrite))]
    public void CheckFaultedAndRelease()
    {
        long faultsA = _m.Driver.Devices[0].FaultsHandled - _faultsA, faultsB = _m.Driver.Devices[1].FaultsHandled - _faultsB;
        if (faultsA == 0 || faultsB == 0 || _mrA.PagesMapped != Pages || _mrB.PagesMapped != Pages)
        {
            throw new InvalidOperationException(
                $"Every page of both ODP MRs should be mapped by NIC faults: faults A {faultsA}, B {faultsB}; pages mapped " +
                $"A {_mrA.PagesMapped}, B {_mrB.PagesMapped} of {Pages}. {_m.Describe()}");
        }
        _m.DeregMr(_mrA);
        _m.DeregMr(_mrB);
        RnicBenchMachine.Unmap(_m.A, _src, Bytes);
        RnicBenchMachine.Unmap(_m.B, _dst, Bytes);
    }

    /// <summary>The baseline: one signaled 64 MiB WRITE between pinned MRs, and the wait for its completion.</summary>
    [Benchmark(Baseline = true)]
    public void PinnedWrite() => Write();

    /// <summary>One signaled 64 MiB WRITE between fresh ODP MRs, every page faulted in by the NICs, and the wait.</summary>
    [Benchmark]
    public void OdpFirstTouchWrite() => Write();

    private void Write() =>
        _m.PostAndWait(new IbvSendWr((ulong)++_writes, RnicWrOpcode.RdmaWrite, RnicSendFlags.Signaled,
            [new RnicSge(_src, Bytes, _mrA.Lkey)], _dst, _mrB.Rkey));

    private void MapAndRegister(bool fillSource)
    {
        _src = RnicBenchMachine.Map(_m.A, Bytes);
        _dst = RnicBenchMachine.Map(_m.B, Bytes);
        if (fillSource)
            RnicBenchMachine.FillPattern(_m.A, _src, Bytes, Seed);
        _mrA = _m.RegMr(_m.A, _src, Bytes, onDemand: true);
        _mrB = _m.RegMr(_m.B, _dst, Bytes, onDemand: true);
        _faultsA = _m.Driver.Devices[0].FaultsHandled;
        _faultsB = _m.Driver.Devices[1].FaultsHandled;
    }
}
