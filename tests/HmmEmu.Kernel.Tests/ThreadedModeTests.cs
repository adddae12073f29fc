using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Mirroring;
using HmmEmu.Kernel.Vm;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Tests;

/// <summary>Smoke tests in <see cref="SchedulerMode.Threaded"/> mode, where simulated threads really run in parallel.</summary>
public sealed class ThreadedModeTests
{
    private const ulong Page = TestMachine.Page;

    [Fact]
    public void Run_ThreadsFaultingAndUnmappingConcurrently_CompleteWithoutException()
    {
        using var m = TestMachine.Create(seed: 5, mode: SchedulerMode.Threaded);
        var p = m.Process;
        int checkedPages = 0;

        m.Run(() =>
        {
            var threads = new List<SimThread>();
            for (int w = 0; w < 4; w++)
            {
                int id = w;
                threads.Add(p.StartThread($"worker{id}", () =>
                {
                    for (int round = 0; round < 10; round++)
                    {
                        ulong a = m.MapAnon(8);
                        for (int i = 0; i < 8; i++)
                            p.WriteInt32(a + ((ulong)i * Page), (id * 1000) + (round * 10) + i);
                        for (int i = 0; i < 8; i++)
                        {
                            Assert.Equal((id * 1000) + (round * 10) + i, p.ReadInt32(a + ((ulong)i * Page)));
                            Interlocked.Increment(ref checkedPages);
                        }
                        Assert.Equal(Errno.Ok, m.Mm.Munmap(a, 8 * Page));
                    }
                }));
            }
            foreach (var t in threads)
                t.Join();
            m.Mm.AssertInvariants();
        });

        Assert.Equal(4 * 10 * 8, checkedPages);
    }

    [Fact]
    public void Run_MirrorRacingWritersForkAndMadvise_CompletesWithoutException()
    {
        using var m = TestMachine.Create(seed: 6, mode: SchedulerMode.Threaded);
        var p = m.Process;
        var k = m.Kernel;
        int commits = 0;

        m.Run(() =>
        {
            var driverLock = new KMutex(k, "driver.lock");
            ulong a = m.MapAnon(16);
            var n = m.Watch(a, 16 * Page, new RecordingNotifierOps { DriverLock = driverLock });
            var threads = new List<SimThread>
            {
                p.StartThread("writer", () =>
                {
                    for (int i = 0; i < 200; i++)
                        p.WriteInt32(a + ((ulong)(i % 16) * Page), i);
                }),
                p.StartThread("zapper", () =>
                {
                    for (int i = 0; i < 50; i++)
                        Assert.Equal(Errno.Ok, m.Mm.Madvise(a + ((ulong)(i % 4) * 4 * Page), 4 * Page, Advice.DontNeed));
                }),
                p.StartThread("forker", () =>
                {
                    for (int i = 0; i < 5; i++)
                    {
                        var child = p.Fork();
                        child.WriteInt32(a, i);
                        child.Exit();
                    }
                }),
                p.StartThread("mirror", () =>
                {
                    for (int attempt = 0; commits < 20 && attempt < 100_000; attempt++)
                    {
                        var range = new HmmRange(n, a, a + (16 * Page)) { NotifierSeq = n.ReadBegin(), DefaultFlags = HmmPfn.ReqFault | HmmPfn.ReqWrite };
                        Errno err;
                        using (m.Mm.MmapReadLock())
                            err = Hmm.RangeFault(range);
                        if (err == Errno.EBUSY)
                            continue;
                        Assert.Equal(Errno.Ok, err);
                        using (driverLock.Scoped())
                        {
                            if (!n.ReadRetry(range.NotifierSeq))
                                commits++;
                        }
                    }
                }),
            };
            foreach (var t in threads)
                t.Join();
        });

        Assert.Equal(20, commits);
    }
}
