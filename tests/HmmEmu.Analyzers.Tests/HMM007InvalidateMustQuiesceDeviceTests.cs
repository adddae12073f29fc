using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM007InvalidateMustQuiesceDeviceAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM007InvalidateMustQuiesceDeviceTests
{
    // The device helpers of a GPU-like driver: a zap that counts what it cleared, a TLB flush that waits, a DMA unmap.
    private const string Helpers = """
        private bool _exiting;

        [DeviceZap]
        private int ZapPtes(ulong start, ulong end) => 1;

        [DeviceZap]
        private void ZapAll() { }

        [TlbFlush]
        private void FlushTlb(ulong start, ulong end) { }

        [DmaUnmap]
        private void UnmapPages() { }

        [TlbFlush, DmaUnmap]
        private void FlushThenUnmap() { }

        """;

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Returns(int location) =>
        Verify.Diagnostic(HMM007InvalidateMustQuiesceDeviceAnalyzer.ReturnDescriptor).WithLocation(location)
            .WithMessage("This path of the invalidate callback returns true after zapping device mappings without a TLB flush and wait ([TlbFlush]) since: the device may still use the stale translations");

    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Unmaps(int location, string callee = "TestDriver.UnmapPages") =>
        Verify.Diagnostic(HMM007InvalidateMustQuiesceDeviceAnalyzer.UnmapDescriptor).WithLocation(location)
            .WithMessage($"'{callee}' drops DMA mappings before the device TLB was flushed and waited for ([TlbFlush]) on every path: the device may still DMA through them");

    [Fact]
    public async Task Invalidate_ZapWithoutFlush_FlagsTheReturn()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                using (_lock.Scoped())
                {
                    notifier.SetSeq(curSeq);
                    ZapAll();
                }
                {|#0:return true;|}
            }
            """), Returns(0));
    }

    [Fact]
    public async Task Invalidate_FlushOnOneBranchOnly_FlagsTheReturn()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                using (_lock.Scoped())
                {
                    notifier.SetSeq(curSeq);
                    ZapAll();
                    if (range.Event != NotifierEvent.Release)
                        FlushTlb(range.Start, range.End);
                }
                {|#0:return true;|}
            }
            """), Returns(0));
    }

    [Fact]
    public async Task Invalidate_ShortcutReturnBetweenZapAndFlush_FlagsTheShortcut()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                _lock.Lock();
                try
                {
                    notifier.SetSeq(curSeq);
                    ZapAll();
                    if (_exiting)
                        {|#0:return true;|}          // "the process is exiting anyway": Xe 333b89063361
                    FlushTlb(range.Start, range.End);
                }
                finally
                {
                    _lock.Unlock();
                }
                return true;
            }
            """), Returns(0));
    }

    [Fact]
    public async Task Invalidate_UnmapBeforeFlush_FlagsTheUnmap()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                using (_lock.Scoped())
                {
                    notifier.SetSeq(curSeq);
                    ZapAll();
                    {|#0:UnmapPages()|};
                    FlushTlb(range.Start, range.End);
                }
                return true;
            }
            """), Unmaps(0));
    }

    [Fact]
    public async Task Invalidate_UnmapWithoutAnyFlush_FlagsTheUnmap()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                using (_lock.Scoped())
                {
                    notifier.SetSeq(curSeq);
                    {|#0:UnmapPages()|};         // the NIC's MTT still points at the pages
                }
                return true;
            }
            """), Unmaps(0));
    }

    [Fact]
    public async Task Invalidate_ZapFlushUnmap_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                using (_lock.Scoped())
                {
                    notifier.SetSeq(curSeq);
                    ZapAll();
                    FlushTlb(range.Start, range.End);
                    UnmapPages();
                }
                return true;
            }
            """));
    }

    [Fact]
    public async Task Invalidate_NothingZapped_SkipsTheFlush_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                _lock.Lock();
                try
                {
                    notifier.SetSeq(curSeq);
                    int n = ZapPtes(range.Start, range.End);
                    if (n != 0)
                    {
                        FlushTlb(range.Start, range.End);
                        UnmapPages();
                    }
                }
                finally
                {
                    _lock.Unlock();
                }
                if (ZapPtes(range.Start, range.End) == 0)
                    return true;
                FlushTlb(range.Start, range.End);
                return true;
            }
            """));
    }

    [Fact]
    public async Task Invalidate_FlushAndUnmapHelperAfterZap_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                    return false;
                using (_lock.Scoped())
                {
                    notifier.SetSeq(curSeq);
                    ZapAll();
                    FlushThenUnmap();
                }
                return true;
            }
            """));
    }

    [Fact]
    public async Task Invalidate_ZapThenReturnFalse_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
            {
                if (!range.Blockable)
                {
                    if (!_lock.TryLock())
                        return false;
                    ZapAll();
                    _lock.Unlock();
                    return false;                  // the caller retries blockably; nothing is released yet
                }
                using (_lock.Scoped())
                {
                    notifier.SetSeq(curSeq);
                    ZapAll();
                    FlushTlb(range.Start, range.End);
                }
                return true;
            }
            """));
    }

    [Fact]
    public async Task NotACallback_ZapWithoutFlush_NoDiagnostic()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Helpers + """
            public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq) => false;

            public bool DropMappings(ulong start, ulong end)
            {
                ZapAll();                          // the driver's own zap: its caller flushes
                UnmapPages();
                return true;
            }
            """));
    }
}
