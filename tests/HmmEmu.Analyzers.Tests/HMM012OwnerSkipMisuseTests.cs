using Verify = HmmEmu.Analyzers.Tests.Verify<HmmEmu.Analyzers.HMM012OwnerSkipMisuseAnalyzer>;

namespace HmmEmu.Analyzers.Tests;

public class HMM012OwnerSkipMisuseTests
{
    // The fixture's token is TestDriver._owner, marked [OwnerToken] in Driver.Header.
    private static Microsoft.CodeAnalysis.Testing.DiagnosticResult Flag(int location, string what, string use, string why) =>
        Verify.Diagnostic().WithLocation(location)
            .WithMessage($"'{what}' is used as the owner {use}, but it is {why}: owners identify a device's pagemap, so use the device's token (a member marked [OwnerToken])");

    private const string Compared = "compared with MmuNotifierRange.Owner";

    private static string Callback(string skip) => $$"""
        public bool Invalidate(MmuIntervalNotifier notifier, in MmuNotifierRange range, ulong curSeq)
        {
            {{skip}}
            using (_lock.Scoped())
                notifier.SetSeq(curSeq);
            return true;
        }
        """;

    [Fact]
    public async Task Invalidate_OwnerComparedWithCurrentThread_Flags()
    {
        // Mika Penttilä's patch and Jason Gunthorpe's answer: the owner is a device token, not 'current'.
        await Verify.AnalyzerAsync(Driver.Wrap(Callback(
            "if (range.Event == NotifierEvent.Migrate && range.Owner == (object){|#0:Thread.CurrentThread|}) return true;")),
            Flag(0, "Thread.CurrentThread", Compared, "the current thread, task or process, and the owner is a device token, not 'current'"));
    }

    [Fact]
    public async Task Invalidate_OwnerComparedWithThis_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback(
            "if (range.Event == NotifierEvent.Exclusive && ReferenceEquals(range.Owner, {|#0:this|})) return true;")),
            Flag(0, "this", Compared, "this TestDriver, and TestDriver is not marked [OwnerToken]"));
    }

    [Fact]
    public async Task Invalidate_OwnerComparedThroughUntracedLocal_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback("""
            object me = _kernel.CurrentProcess ?? (object)_lock;
                var owner = range.Owner;
                if (owner.Equals({|#0:me|})) return true;
            """)),
            Flag(0, "me", Compared, "local 'me', which is not traced to a member marked [OwnerToken]"));
    }

    [Fact]
    public async Task Fault_FreshObjectAsDevPrivateOwner_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback("") + """

            public HmmRange NewRange(ulong start, ulong end) =>
                new HmmRange(_notifier, start, end) { DevPrivateOwner = {|#0:new object()|} };
            """),
            Flag(0, "new object()", "in HmmRange.DevPrivateOwner", "a new object, which no invalidation or device page carries"));
    }

    [Fact]
    public async Task Migrate_PgmapOwnerFromAnUnmarkedFieldAndExclusiveFromCurrentProcess_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback("") + """

            public void Prepare(HmmEmu.Kernel.Migration.MigrateVma args, Mm mm, ulong addr)
            {
                args.PgmapOwner = {|#0:_notifier|};
                mm.MakeDeviceExclusive(addr, {|#1:_kernel.CurrentProcess|}, out ulong pfn);
            }
            """),
            Flag(0, "_notifier", "in MigrateVma.PgmapOwner", "field '_notifier', which is not marked [OwnerToken]"),
            Flag(1, "_kernel.CurrentProcess", "for Mm.MakeDeviceExclusive", "the current thread, task or process, and the owner is a device token, not 'current'"));
    }

    [Fact]
    public async Task Helper_ArgumentForOwnerTokenParameterIsNotTheToken_Flags()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback("") + """

            private static HmmRange Snapshot(MmuIntervalNotifier n, ulong start, [OwnerToken] object owner) =>
                new HmmRange(n, start, start + 4096) { DevPrivateOwner = owner };

            public HmmRange Caller(ulong start) => Snapshot(_notifier, start, {|#0:this|});
            """),
            Flag(0, "this", "for parameter 'owner' of Snapshot, which is marked [OwnerToken]", "this TestDriver, and TestDriver is not marked [OwnerToken]"));
    }

    [Fact]
    public async Task Invalidate_OwnerSkipAgainstTheToken_DoesNotFlag()
    {
        // GpuContext.Invalidate and MirrorFile.Invalidate: ReferenceEquals(range.Owner, token), also through a local.
        await Verify.AnalyzerAsync(Driver.Wrap(Callback("""
            if (range.Event == NotifierEvent.Exclusive && ReferenceEquals(range.Owner, _owner)) return true;
                bool own = range.Event == NotifierEvent.Migrate && range.Owner == _owner;
                var token = _owner;
                if (own || range.Owner != null && range.Owner.Equals(token)) return true;
            """)));
    }

    [Fact]
    public async Task Fault_TokenAsDevPrivateOwnerPgmapOwnerAndExclusiveOwner_DoesNotFlag()
    {
        await Verify.AnalyzerAsync(Driver.Wrap(Callback("") + """

            public void Setup(HmmEmu.Kernel.Migration.MigrateVma args, Mm mm, ulong addr, bool any)
            {
                var range = new HmmRange(_notifier, addr, addr + 4096) { DevPrivateOwner = _owner };
                range.DevPrivateOwner = any ? null : _owner;
                args.PgmapOwner = _owner;
                mm.MakeDeviceExclusive(addr, _owner, out ulong pfn);
            }
            """));
    }

    [Fact]
    public async Task Device_ThisInATokenClassAndTokenParameter_DoesNotFlag()
    {
        // MirrorDevice registers its pagemap with itself as owner: the class is marked, and 'this' is the token.
        await Verify.AnalyzerAsync("""
            using HmmEmu.Annotations;
            using HmmEmu.Kernel.Migration;
            using HmmEmu.Kernel.Mirroring;
            using HmmEmu.Kernel.Notifiers;

            [OwnerToken]
            public sealed class Device
            {
                public MigrateVma Args(ulong start) => new MigrateVma { Start = start, End = start + 4096, PgmapOwner = this };

                public static HmmRange Range(MmuIntervalNotifier n, ulong start, [OwnerToken] object owner) =>
                    new HmmRange(n, start, start + 4096) { DevPrivateOwner = owner };

                public HmmRange Mine(MmuIntervalNotifier n, ulong start) => Range(n, start, this);
            }

            public sealed class File
            {
                [OwnerToken] public Device Device { get; } = new Device();

                public bool IsOwn(in MmuNotifierRange range) => range.Owner == Device || range.Owner is null;
            }
            """);
    }

    [Fact]
    public async Task Unrelated_EqualityAndOwnerProperties_DoNotFlag()
    {
        // Comparisons that do not involve MmuNotifierRange.Owner, and a null owner, are not owner-skips.
        await Verify.AnalyzerAsync(Driver.Wrap(Callback("if (range.Owner == null && this == (object)_lock) return true;") + """

            public bool SameThread(object o) => o == Thread.CurrentThread;
            """));
    }
}
