using HmmEmu.Kernel;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;
using HmmEmu.Mirror;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Coherence.Tests.Bugs;

/// <summary>
/// The mutant mirror driven directly: with <see cref="MirrorBug.None"/> it behaves as a correct mirror, and a few
/// bugs show their symptom in <see cref="IMirrorContext.Translations"/> (or in the kernel's checks) after one
/// directed command sequence, without the coherence suite.
/// </summary>
public class MutantMirrorTests
{
    private const int Page = PhysicalMemory.PageSize;

    [Fact]
    public void Write_ThenCpuRead_SeesDeviceData()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        var data = Pattern(2, 0x11);
        var seen = new byte[2 * Page];
        var err = Errno.EIO;
        m.OnProcess(() =>
        {
            ulong addr = m.MapAnon(2);
            err = m.Mirror.Write(addr, data);
            m.Process.ReadBytes(addr, seen);
        });
        Assert.Equal(Errno.Ok, err);
        Assert.Equal(data, seen);
    }

    [Fact]
    public void CpuWrite_AfterDeviceRead_DeviceReadSeesCpuData()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        var data = Pattern(2, 0x22);
        var seen = new byte[2 * Page];
        Errno first = Errno.EIO, second = Errno.EIO;
        m.OnProcess(() =>
        {
            ulong addr = m.MapAnon(2);
            first = m.Mirror.Read(addr, seen);            // maps the zero page on the device, and fills its TLB
            m.Process.WriteBytes(addr, data);             // COW off the zero page: the device must drop it
            second = m.Mirror.Read(addr, seen);
        });
        Assert.Equal(Errno.Ok, first);
        Assert.Equal(Errno.Ok, second);
        Assert.Equal(data, seen);
    }

    [Fact]
    public void Munmap_AfterDeviceRead_DropsEveryTranslationOfTheRange()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        ulong addr = 0;
        var err = Errno.EIO;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(4);
            m.Process.WriteBytes(addr, Pattern(4, 0x33));
            err = m.Mirror.Read(addr, new byte[4 * Page]);
        });
        int before = m.Mirror.Translations().Count;
        m.OnProcess(() => m.Process.Mm.Munmap(addr, 4 * Page));
        Assert.Equal(Errno.Ok, err);
        Assert.Equal(8, before);                          // 4 in the page table, 4 in the TLB
        Assert.Empty(m.Mirror.Translations());
    }

    [Fact]
    public void MprotectReadOnly_ThenDeviceWrite_FailsWithoutWritableTranslation()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        ulong addr = 0;
        Errno before = Errno.EIO, after = Errno.Ok;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(2);
            before = m.Mirror.Write(addr, Pattern(2, 0x44));
            Assert.Equal(Errno.Ok, m.Process.Mm.Mprotect(addr, 2 * Page, Prot.Read));
            after = m.Mirror.Write(addr, Pattern(2, 0x55));
        });
        Assert.Equal(Errno.Ok, before);
        Assert.Equal(Errno.EPERM, after);
        Assert.DoesNotContain(m.Mirror.Translations(), t => t.Writable);
    }

    [Fact]
    public void Exclusive_ThenCpuWrite_RevokesTheAtomicEntry()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        var data = Pattern(1, 0x66);
        var seen = new byte[Page];
        ulong addr = 0, pfn = 0;
        var err = Errno.EIO;
        bool cpuExclusive = false;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(1);
            m.Process.WriteBytes(addr, data);
            pfn = m.Process.Mm.GetPte(addr).Pfn;
            err = m.Mirror.Exclusive(addr, 1, seen);
            cpuExclusive = m.Process.Mm.GetPte(addr).IsDeviceExclusive;
        });
        var granted = m.Mirror.Translations();
        m.OnProcess(() => m.Process.WriteInt32(addr, 7));
        Assert.Equal(Errno.Ok, err);
        Assert.Equal(data, seen);
        Assert.True(cpuExclusive);
        Assert.Contains(new DeviceTranslation(addr, pfn, Writable: false, Atomic: true, "pt"), granted);
        Assert.DoesNotContain(m.Mirror.Translations(), t => t.Atomic);
    }

    [Fact]
    public void AtomicAdd_OnCpuWrittenWord_AddsAndReturnsThePreviousValue()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        long? previous = null;
        long now = 0;
        var err = Errno.EIO;
        ulong addr = 0;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(1);
            m.Process.AtomicAdd64(addr + 8, 40);
            err = m.Mirror.AtomicAdd(addr + 8, 2, out previous);
            now = m.Process.AtomicAdd64(addr + 8, 0);
        });
        Assert.Equal(Errno.Ok, err);
        Assert.Equal(40, previous);
        Assert.Equal(42, now);
    }

    [Fact]
    public void AtomicAdd_Unaligned_ReturnsEINVAL()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        var err = Errno.Ok;
        m.OnProcess(() => err = m.Mirror.AtomicAdd(m.MapAnon(1) + 4, 1, out _));
        Assert.Equal(Errno.EINVAL, err);
    }

    [Fact]
    public void MigrateToDevice_OnAMirrorWithoutDeviceMemory_ReturnsEOPNOTSUPP()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        var err = Errno.Ok;
        m.OnProcess(() => err = m.Mirror.MigrateToDevice(m.MapAnon(1), 1));
        Assert.Equal(Errno.EOPNOTSUPP, err);
    }

    [Fact]
    public void OomReap_AfterDeviceRead_DropsTranslationsWithoutSleeping()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        var err = Errno.EIO;
        m.OnProcess(() =>
        {
            ulong addr = m.MapAnon(2);
            m.Process.WriteBytes(addr, Pattern(2, 0x77));
            Assert.Equal(Errno.Ok, m.Mirror.Read(addr, new byte[2 * Page]));
            err = m.Process.Mm.OomReap();
        });
        Assert.Equal(Errno.Ok, err);
        Assert.Empty(m.Mirror.Translations());
    }

    [Fact]
    public void AnotherDevicesMigration_DropsTheTranslationOfTheMigratedPage()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        var (addr, _, cpuPrivate) = MigrateOnAnotherDevice(m);
        Assert.True(cpuPrivate);
        Assert.DoesNotContain(m.Mirror.Translations(), t => t.Address == addr);
    }

    [Fact]
    public void Close_RemovesTheNotifier()
    {
        using var m = MutantMachine.Boot(MirrorBug.None);
        var notifier = m.Mirror.Notifier!;
        m.OnProcess(m.Mirror.Close);
        Assert.Null(m.Mirror.Notifier);
        Assert.Equal(NotifierState.Removed, notifier.State);
    }

    [Fact]
    public void FlushTableNotTlb_Munmap_LeavesTlbTranslations()
    {
        using var m = MutantMachine.Boot(MirrorBug.FlushTableNotTlb);
        ulong addr = 0;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(2);
            m.Process.WriteBytes(addr, Pattern(2, 0x88));
            Assert.Equal(Errno.Ok, m.Mirror.Read(addr, new byte[2 * Page]));
            Assert.Equal(Errno.Ok, m.Process.Mm.Munmap(addr, 2 * Page));
        });
        var left = m.Mirror.Translations();
        Assert.Equal(2, left.Count);
        Assert.All(left, t => Assert.Equal("tlb", t.Source));
    }

    [Fact]
    public void IgnoreWritePermission_DeviceReadOfReadOnlyPage_MapsItWritable()
    {
        using var m = MutantMachine.Boot(MirrorBug.IgnoreWritePermission);
        ulong addr = 0;
        m.OnProcess(() =>
        {
            addr = m.Process.Map(Page, Prot.Read, MapFlags.PrivateAnonymous);
            Assert.Equal(Errno.Ok, m.Mirror.Read(addr, new byte[Page]));
        });
        Assert.Contains(m.Mirror.Translations(), t => t.Address == addr && t.Writable);
    }

    [Fact]
    public void EraseFirstPageOnly_MunmapOfFourPages_LeavesThreeMapped()
    {
        using var m = MutantMachine.Boot(MirrorBug.EraseFirstPageOnly);
        ulong addr = 0;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(4);
            m.Process.WriteBytes(addr, Pattern(4, 0x99));
            Assert.Equal(Errno.Ok, m.Mirror.Read(addr, new byte[4 * Page]));
            Assert.Equal(Errno.Ok, m.Process.Mm.Munmap(addr, 4 * Page));
        });
        var pages = m.Mirror.Translations().Select(t => t.Address).Distinct().Order().ToArray();
        Assert.Equal([addr + Page, addr + 2 * Page, addr + 3 * Page], pages);
    }

    [Fact]
    public void IgnoreMigrateEventsOfOthers_AnotherDevicesMigration_KeepsTheFreedFrameMapped()
    {
        using var m = MutantMachine.Boot(MirrorBug.IgnoreMigrateEventsOfOthers);
        var (addr, ramPfn, cpuPrivate) = MigrateOnAnotherDevice(m);
        Assert.True(cpuPrivate);
        Assert.Contains(m.Mirror.Translations(), t => t.Address == addr && t.Pfn == ramPfn);
    }

    [Fact]
    public void AtomicWithoutExclusive_AtomicAdd_UsesAnOrdinaryWritableMapping()
    {
        using var m = MutantMachine.Boot(MirrorBug.AtomicWithoutExclusive);
        ulong addr = 0;
        bool cpuExclusive = true;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(1);
            Assert.Equal(Errno.Ok, m.Mirror.AtomicAdd(addr, 1, out _));
            cpuExclusive = m.Process.Mm.GetPte(addr).IsDeviceExclusive;
        });
        Assert.False(cpuExclusive);
        Assert.Contains(m.Mirror.Translations(), t => t.Address == addr && t.Writable && !t.Atomic);
    }

    [Fact]
    public void NonBlockableWaits_OomReap_SleepsInTheCallback()
    {
        using var m = MutantMachine.Boot(MirrorBug.NonBlockableWaits);
        var e = Assert.Throws<KernelRuleViolationException>(() => m.OnProcess(() =>
        {
            ulong addr = m.MapAnon(1);
            m.Process.WriteBytes(addr, Pattern(1, 0xAA));
            m.Process.Mm.OomReap();
        }));
        Assert.Contains("non-blockable", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForgetSetSeq_Munmap_KernelWarnsAboutTheMissingSetSeq()
    {
        using var m = MutantMachine.Boot(MirrorBug.ForgetSetSeq);
        m.OnProcess(() => m.Process.Mm.Munmap(m.MapAnon(1), Page));
        Assert.Contains(m.Kernel.Warnings, w => w.Message.Contains("without calling SetSeq", StringComparison.Ordinal));
    }

    [Fact]
    public void CloseKeepsNotifier_Close_LeavesTheNotifierInserted()
    {
        using var m = MutantMachine.Boot(MirrorBug.CloseKeepsNotifier);
        var notifier = m.Mirror.Notifier!;
        m.OnProcess(m.Mirror.Close);
        Assert.Equal(NotifierState.Inserted, notifier.State);
    }

    [Fact]
    public void DeviceReadRacingMadvise_NoSeedLeavesAStaleTranslation()
    {
        Assert.DoesNotContain(Enumerable.Range(1, 50), seed => DeviceReadRacingMadvise(MirrorBug.None, (ulong)seed));
    }

    [Fact]
    public void SkipReadRetry_DeviceReadRacingMadvise_SomeSeedCommitsTheFreedFrame()
    {
        Assert.Contains(Enumerable.Range(1, 50), seed => DeviceReadRacingMadvise(MirrorBug.SkipReadRetry, (ulong)seed));
    }

    // A device read of a page racing madvise(DONTNEED) of it on another thread, which then writes a second page
    // (taking the frame the madvise freed) and the page itself (a new frame). Returns whether the device ends up
    // translating the page to a frame other than the one the CPU maps.
    private static bool DeviceReadRacingMadvise(MirrorBug bug, ulong seed)
    {
        using var m = MutantMachine.Boot(bug, seed);
        ulong addr = 0;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(2);
            m.Process.WriteBytes(addr, Pattern(1, 0xCC));
        });
        m.Kernel.Run(() =>
        {
            var device = m.Process.StartThread("device", () => m.Mirror.Read(addr, new byte[Page]));
            var cpu = m.Process.StartThread("cpu", () =>
            {
                m.Process.Mm.Madvise(addr, Page, Advice.DontNeed);
                m.Process.WriteBytes(addr + Page, Pattern(1, 0xDD));
                m.Process.WriteBytes(addr, Pattern(1, 0xEE));
            });
            device.Join();
            cpu.Join();
        });
        var pte = m.Process.Mm.GetPte(addr);
        return m.Mirror.Translations().Any(t => t.Address == addr && (!pte.IsPresent || t.Pfn != pte.Pfn));
    }

    // A page the CPU wrote and the mutant mirror read, then migrated to device-private memory by a second, real
    // mirror device (test_hmm's dmirror). Returns the page, the RAM frame it had, and whether the CPU now maps it
    // device-private.
    private static (ulong Addr, ulong RamPfn, bool CpuPrivate) MigrateOnAnotherDevice(MutantMachine m)
    {
        var other = new MirrorDevice(m.Kernel, 1);
        ulong addr = 0, ramPfn = 0;
        bool cpuPrivate = false;
        m.OnProcess(() =>
        {
            addr = m.MapAnon(1);
            ulong buffer = m.MapAnon(1);
            m.Process.WriteBytes(addr, Pattern(1, 0xBB));
            ramPfn = m.Process.Mm.GetPte(addr).Pfn;
            Assert.Equal(Errno.Ok, m.Mirror.Read(addr, new byte[Page]));
            Assert.Equal(Errno.Ok, other.Open(out var file));
            var cmd = new MirrorCommand { Addr = addr, Ptr = buffer, NPages = 1 };
            Assert.Equal(Errno.Ok, file!.Ioctl(MirrorIoctl.MigrateToDevice, ref cmd));
            cpuPrivate = m.Process.Mm.GetPte(addr).IsDevicePrivate;
            file.Close();
        });
        return (addr, ramPfn, cpuPrivate);
    }

    private static byte[] Pattern(int pages, byte seed)
    {
        var data = new byte[pages * Page];
        for (int i = 0; i < data.Length; i++)
            data[i] = (byte)(seed + i * 7);
        return data;
    }

    /// <summary>A kernel, one process and a mutant mirror device opened by it.</summary>
    private sealed class MutantMachine : IDisposable
    {
        private MutantMachine(HostKernel kernel, Process process)
        {
            Kernel = kernel;
            Process = process;
        }

        public HostKernel Kernel { get; }

        public Process Process { get; }

        public IMirrorContext Mirror { get; private set; } = null!;

        public static MutantMachine Boot(MirrorBug bug, ulong seed = 1)
        {
            var kernel = new HostKernel(KernelOptions.For(seed));
            var m = new MutantMachine(kernel, kernel.CreateProcess("t"));
            var device = new MutantMirrorTarget(bug).CreateDevice(kernel, 0);
            m.OnProcess(() => m.Mirror = device.Open());
            return m;
        }

        // Runs body on a new thread of the process until the machine is quiescent.
        public void OnProcess(Action body) => Kernel.Run(() => Process.StartThread("main", body).Join());

        public ulong MapAnon(int pages) => Process.Map((ulong)pages * Page, Prot.Read | Prot.Write, MapFlags.PrivateAnonymous);

        public void Dispose() => Kernel.Dispose();
    }
}
