using Microsoft.CodeAnalysis.Testing;
using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.RDMA001TeardownOrderAndKeyReuseAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class RDMA001TeardownOrderAndKeyReuseTests
{
    // An ODP memory region of an RNIC-like driver: a notifier, an MTT in coherent memory, DMA-mapped pages, pinned pages,
    // a key from the driver's pool, and the device commands that revoke the key (waited for, or only posted).
    private static string Mr(string members) => """
        using System;
        using System.Threading;
        using HmmEmu.Annotations;
        using HmmEmu.Kernel;
        using HmmEmu.Kernel.Bus;
        using HmmEmu.Kernel.Locking;
        using HmmEmu.Kernel.Memory;
        using HmmEmu.Kernel.Notifiers;

        public sealed class KeyPool
        {
            [KeyRelease]
            public void Free(uint key) { }
        }

        public sealed class OdpMr
        {
            private readonly PciDev _pdev;
            private readonly HostKernel _kernel;
            private readonly KeyPool _keys;
            private readonly Completion _deregDone;
            private readonly ulong[] _bus = new ulong[4];
            private MmuIntervalNotifier? _notifier;
            private DmaCoherentBuffer? _mtt;
            private ulong[]? _pinned;

            public OdpMr(PciDev pdev, HostKernel kernel, KeyPool keys, Completion deregDone)
            {
                _pdev = pdev; _kernel = kernel; _keys = keys; _deregDone = deregDone;
            }

            public uint Lkey { get; private set; }

            // DEREG_MR, waited for: the key no longer resolves and the MR's DMA drained.
            [DeviceKeyRevoke]
            private bool DestroyMkey(uint key) => true;

            // DEREG_MR posted; _deregDone completes when the device answered.
            [DeviceKeyRevoke(Waits = false)]
            private void PostDestroyMkey(uint key) { }

            [DmaUnmap]
            private void UnmapAll()
            {
                foreach (ulong bus in _bus)
                    _pdev.DmaUnmapPage(bus);
            }

            // ib_umem_odp_release: the notifier, then the DMA mappings.
            private void ReleaseUmem()
            {
                _notifier?.Remove();
                _notifier = null;
                UnmapAll();
            }

            // A helper that is in order by itself.
            private void DestroyAndRelease()
            {
                DestroyMkey(Lkey);
                ReleaseUmem();
            }

        """ + members + """

        }
        """;

    private static DiagnosticResult Flag(int location, string callee, string what) =>
        Verify.Diagnostic(RDMA001TeardownOrderAndKeyReuseAnalyzer.Descriptor).WithLocation(location)
            .WithMessage($"'{callee}' {what} on a path where the memory key was not revoked on the device and waited for ([DeviceKeyRevoke]): the device may still use it; revoke the key first");

    private static DiagnosticResult FlagHelper(int location, string callee, string what) =>
        Verify.Diagnostic(RDMA001TeardownOrderAndKeyReuseAnalyzer.CompilationEndDescriptor).WithLocation(location)
            .WithMessage($"'{callee}' {what} (in the helper) on a path where the memory key was not revoked on the device and waited for ([DeviceKeyRevoke]): the device may still use it; revoke the key first");

    // ---- must flag ---------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Dereg_NotifierRemovedAndMttFreedBeforeTheRevoke_FlagsBoth()
    {
        await Verify.AnalyzerAsync(Mr("""
                public void Dereg()
                {
                    {|#0:_notifier!.Remove()|};
                    {|#1:_pdev.FreeCoherent(_mtt!)|};
                    DestroyMkey(Lkey);
                }
            """),
            Flag(0, "MmuIntervalNotifier.Remove", "removes the interval notifier"),
            Flag(1, "PciDev.FreeCoherent", "frees memory the device reads"));
    }

    [Fact]
    public async Task Dereg_KeyReturnedToThePoolBeforeTheRevoke_Flags()
    {
        // "another allocation could get the same mkey #": the key is free while the device still uses it.
        await Verify.AnalyzerAsync(Mr("""
                public void Dereg()
                {
                    uint key = Lkey;
                    {|#0:_keys.Free(key)|};
                    DestroyMkey(key);
                    UnmapAll();
                }
            """),
            Flag(0, "KeyPool.Free", "returns the key to the free pool"));
    }

    [Fact]
    public async Task Dereg_RevokeOnlyForOdpMrs_FlagsTheReleaseOnThePinnedPath()
    {
        await Verify.AnalyzerAsync(Mr("""
                public void Dereg(bool onDemand)
                {
                    if (onDemand)
                        DestroyMkey(Lkey);
                    {|#0:UnmapAll()|};
                    foreach (ulong pfn in _pinned!)
                        {|#1:_kernel.Memory.PutPage(pfn)|};
                }
            """),
            Flag(0, "OdpMr.UnmapAll", "drops DMA mappings"),
            Flag(1, "PhysicalMemory.PutPage", "releases pages"));
    }

    [Fact]
    public async Task Dereg_PostedRevokeNotWaitedFor_Flags()
    {
        await Verify.AnalyzerAsync(Mr("""
                public void Dereg()
                {
                    PostDestroyMkey(Lkey);
                    {|#0:UnmapAll()|};
                    _deregDone.Wait();
                }
            """),
            Flag(0, "OdpMr.UnmapAll", "drops DMA mappings"));
    }

    [Fact]
    public async Task Dereg_HelperThatReleasesCalledBeforeTheRevoke_FlagsTheHelperCall()
    {
        // mlx5 before e6fb246ccafb: the umem went before the mkey was destroyed.
        await Verify.AnalyzerAsync(Mr("""
                public void Dereg()
                {
                    {|#0:ReleaseUmem()|};
                    DestroyMkey(Lkey);
                }
            """),
            FlagHelper(0, "OdpMr.ReleaseUmem", "removes the interval notifier and drops DMA mappings"));
    }

    [Fact]
    public async Task Dereg_ReleaseInAFinallyAroundTheRevoke_FlagsTheExceptionFreePathToo()
    {
        // The finally also runs when the revoke is skipped by the early return.
        await Verify.AnalyzerAsync(Mr("""
                public void Dereg(bool dead)
                {
                    try
                    {
                        if (dead)
                            return;
                        DestroyMkey(Lkey);
                    }
                    finally
                    {
                        {|#0:UnmapAll()|};
                    }
                }
            """),
            Flag(0, "OdpMr.UnmapAll", "drops DMA mappings"));
    }

    // ---- must not flag -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Dereg_RevokeThenReleaseInOrder_DoesNotFlag()
    {
        // mlx5_ib_dereg_mr after e6fb246ccafb: stop the mkey, then the umem, then free the key.
        await Verify.AnalyzerAsync(Mr("""
                public void Dereg()
                {
                    uint key = Lkey;
                    if (!DestroyMkey(key))
                        return;
                    ReleaseUmem();
                    _pdev.FreeCoherent(_mtt!);
                    _keys.Free(key);
                }
            """));
    }

    [Fact]
    public async Task Deregister_OurRnicShape_KeyAbsentGuardAndHelperAfterTheRevoke_DoesNotFlag()
    {
        // IbvMr.Deregister: DEREG_MR only if the MR got a key, then Release() (notifier, unmap, pins, MTT).
        await Verify.AnalyzerAsync(Mr("""
                private int _deregistered;

                public int Deregister()
                {
                    if (Lkey != 0)
                    {
                        if (!DestroyMkey(Lkey))
                            return -5;
                    }
                    Volatile.Write(ref _deregistered, 1);
                    Release();
                    return 0;
                }

                private void Release()
                {
                    _notifier?.Remove();
                    _notifier = null;
                    UnmapAll();
                    if (_pinned is not null)
                    {
                        foreach (ulong pfn in _pinned)
                            _kernel.Memory.PutPage(pfn);
                        _pinned = null;
                    }
                    if (_mtt is not null)
                        _pdev.FreeCoherent(_mtt);
                }
            """));
    }

    [Fact]
    public async Task Dereg_PostedRevokeWaitedForBeforeTheRelease_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Mr("""
                public void Dereg()
                {
                    PostDestroyMkey(Lkey);
                    _deregDone.Wait();
                    ReleaseUmem();
                    _keys.Free(Lkey);
                }
            """));
    }

    [Fact]
    public async Task RegisterErrorPath_ReleaseWithoutAnyKey_IsNotATeardownAndDoesNotFlag()
    {
        // Registration failed before the device issued a key: nothing to revoke, the method never revokes.
        await Verify.AnalyzerAsync(Mr("""
                public int Register(bool commandFailed)
                {
                    if (commandFailed)
                    {
                        ReleaseUmem();
                        _pdev.FreeCoherent(_mtt!);
                        return -12;
                    }
                    return 0;
                }
            """));
    }

    [Fact]
    public async Task Close_HelperThatRevokesItself_IsInOrderAndDoesNotFlag()
    {
        // IbvContext.Close: each MR's Deregister revokes then releases, before this method's own revoke.
        await Verify.AnalyzerAsync(Mr("""
                public void Close(OdpMr[] others)
                {
                    foreach (var mr in others)
                        mr.DestroyAndRelease();
                    DestroyMkey(Lkey);
                    ReleaseUmem();
                }
            """));
    }

    [Fact]
    public async Task Dereg_NullKeyObjectGuard_DoesNotFlagTheNoKeyPath()
    {
        await Verify.AnalyzerAsync(Mr("""
                public sealed class Mkey
                {
                    [DeviceKeyRevoke]
                    public void Destroy() { }
                }

                private Mkey? _mkey;

                public void Dereg()
                {
                    var mkey = _mkey;
                    if (mkey is not null)
                        mkey.Destroy();
                    UnmapAll();
                }
            """));
    }
}
