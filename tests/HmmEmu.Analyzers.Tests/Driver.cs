namespace HmmEmu.Analyzers.Tests;

/// <summary>
/// Wraps test members in a small driver class that implements the kernel's <c>IMmuIntervalNotifierOps</c> and has
/// the usual locks, so that each test shows only the shape it is about.
/// </summary>
internal static class Driver
{
    /// <summary>The usings and the class around <paramref name="members"/>, indented as class members.</summary>
    public static string Wrap(string members) =>
        Header + string.Join("\n", members.Split('\n').Select(l => l.Length == 0 ? l : "    " + l)) + Footer;

    public const string Header = """
        using System;
        using System.Threading;
        using HmmEmu.Annotations;
        using HmmEmu.Kernel;
        using HmmEmu.Kernel.Locking;
        using HmmEmu.Kernel.Memory;
        using HmmEmu.Kernel.Mirroring;
        using HmmEmu.Kernel.Notifiers;
        using HmmEmu.Kernel.Vm;

        public sealed class TestDriver : IMmuIntervalNotifierOps
        {
            private readonly KMutex _lock;
            private readonly KMutex _other;
            private readonly KSpinLock _spin;
            private readonly Completion _done;
            private readonly WaitQueue _events;
            private readonly MmuIntervalNotifier _notifier;
            private readonly HostKernel _kernel;
            [OwnerToken] private readonly object _owner = new object();

            public TestDriver(KMutex l, KMutex o, KSpinLock s, Completion d, WaitQueue e, MmuIntervalNotifier n, HostKernel k)
            {
                _lock = l; _other = o; _spin = s; _done = d; _events = e; _notifier = n; _kernel = k;
            }

            private void Zap(ulong start, ulong end) { }

        """;

    public const string Footer = """

        }
        """;
}
