using System.Runtime.CompilerServices;
using HmmEmu.Kernel.Locking;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Tests;

/// <summary>Completions, wait queues, work queues and the reader/writer semaphore.</summary>
public sealed class LockPrimitiveTests
{
    [Fact]
    public void Completion_CompleteOnce_ReleasesExactlyOneWaiter()
    {
        using var m = TestMachine.Create();
        int finished = -1;

        m.Run(() =>
        {
            var done = new Completion(m.Kernel, "done");
            int count = 0;
            var waiters = new[]
            {
                m.Kernel.Scheduler.Spawn("w1", () => { done.Wait(); Interlocked.Increment(ref count); }),
                m.Kernel.Scheduler.Spawn("w2", () => { done.Wait(); Interlocked.Increment(ref count); }),
            };
            m.Kernel.Scheduler.Sleep(10_000);
            done.Complete();
            m.Kernel.Scheduler.Sleep(10_000);
            finished = Volatile.Read(ref count);
            done.Complete();
            foreach (var w in waiters)
                w.Join();
        });

        Assert.Equal(1, finished);
    }

    [Fact]
    public void Completion_CompleteAll_ReleasesEveryWaiterAndLaterOnes()
    {
        using var m = TestMachine.Create();
        int finished = 0;

        m.Run(() =>
        {
            var done = new Completion(m.Kernel, "done");
            var waiters = new[]
            {
                m.Kernel.Scheduler.Spawn("w1", () => { done.Wait(); Interlocked.Increment(ref finished); }),
                m.Kernel.Scheduler.Spawn("w2", () => { done.Wait(); Interlocked.Increment(ref finished); }),
            };
            m.Kernel.Scheduler.Sleep(10_000);
            done.CompleteAll();
            foreach (var w in waiters)
                w.Join();
            done.Wait();
            Interlocked.Increment(ref finished);
        });

        Assert.Equal(3, finished);
    }

    [Fact]
    public void Completion_Reinit_MakesTryWaitFail()
    {
        using var m = TestMachine.Create();
        bool acquired = true;

        m.Run(() =>
        {
            var done = new Completion(m.Kernel, "done");
            done.CompleteAll();
            done.Reinit();
            acquired = done.TryWait();
        });

        Assert.False(acquired);
    }

    [Fact]
    public void Completion_NeverCompleted_WaitDeadlocksSimulation()
    {
        using var m = TestMachine.Create();

        Assert.Throws<SimulationDeadlockException>(() => m.Run(() => new Completion(m.Kernel, "never").Wait()));
    }

    [Fact]
    public void WaitQueue_WaitEvent_ReturnsOnceConditionHoldsAndWoken()
    {
        using var m = TestMachine.Create();
        ulong wokeAt = 0;

        m.Run(() =>
        {
            var wq = new WaitQueue(m.Kernel, "flag");
            var flag = new StrongBox<int>(0);
            var waiter = m.Kernel.Scheduler.Spawn("waiter", () =>
            {
                wq.WaitEvent(flag, static f => Volatile.Read(ref f.Value) != 0);
                wokeAt = m.Kernel.Clock.Now;
            });
            m.Kernel.Scheduler.Sleep(5_000);
            Volatile.Write(ref flag.Value, 1);
            wq.WakeUpAll();
            waiter.Join();
        });

        Assert.True(wokeAt >= 5_000, $"the waiter returned at t={wokeAt}ns, before the flag was set");
    }

    [Fact]
    public void WorkQueue_Flush_WaitsForQueuedItemsInOrder()
    {
        using var m = TestMachine.Create();
        var ran = new List<int>();

        m.Run(() =>
        {
            using var wq = new WorkQueue(m.Kernel, "test");
            for (int i = 0; i < 3; i++)
            {
                int id = i;
                Assert.True(wq.Queue(new WorkItem($"item{id}", () =>
                {
                    m.Kernel.Scheduler.Sleep(1_000);
                    lock (ran)
                        ran.Add(id);
                })));
            }
            wq.Flush();
        });

        Assert.Equal([0, 1, 2], ran);
    }

    [Fact]
    public void WorkQueue_QueuePendingItemAgain_ReturnsFalse()
    {
        using var m = TestMachine.Create();
        bool second = true;

        m.Run(() =>
        {
            using var wq = new WorkQueue(m.Kernel, "test");
            var item = new WorkItem("item", () => { });
            wq.Queue(item);
            second = wq.Queue(item);
            wq.Flush();
        });

        Assert.False(second);
    }

    [Fact]
    public void WorkQueue_ItemQueuedAgainWhileRunning_FlushReturnsAfterBothRuns()
    {
        using var m = TestMachine.Create();
        int runs = 0;

        m.Run(() =>
        {
            using var wq = new WorkQueue(m.Kernel, "test");
            WorkItem? item = null;
            item = new WorkItem("requeues itself once", () =>
            {
                if (Interlocked.Increment(ref runs) == 1)
                    Assert.True(wq.Queue(item!));   // not pending while it runs: an interrupt re-queues it
                m.Kernel.Scheduler.Sleep(1_000);
            });
            wq.Queue(item);
            wq.Flush();   // used to wait forever: the first run retired the second run's sequence
        });

        Assert.Equal(2, runs);
    }

    [Fact]
    public void WorkQueue_FlushHoldingLockThatItemTakes_ReportsCircularDependency()
    {
        using var m = TestMachine.Create();

        var ex = Assert.Throws<KernelRuleViolationException>(() => m.Run(() =>
        {
            var mutex = new KMutex(m.Kernel, "driver.lock");
            using var wq = new WorkQueue(m.Kernel, "test");
            wq.Queue(new WorkItem("takes lock", () => mutex.Scoped().Dispose()));
            wq.Flush();
            using (mutex.Scoped())
                wq.Flush();
        }));

        Assert.Contains("circular locking dependency", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KRwSemaphore_TwoReaders_HoldTogether()
    {
        using var m = TestMachine.Create();
        int maxReaders = 0;

        m.Run(() =>
        {
            var sem = new KRwSemaphore(m.Kernel, "sem");
            int readers = 0;
            var threads = new[] { "r1", "r2" }.Select(name => m.Kernel.Scheduler.Spawn(name, () =>
            {
                using (sem.ScopedRead())
                {
                    int now = Interlocked.Increment(ref readers);
                    InterlockedMax(ref maxReaders, now);
                    m.Kernel.Scheduler.Sleep(10_000);
                    Interlocked.Decrement(ref readers);
                }
            })).ToArray();
            foreach (var t in threads)
                t.Join();
        });

        Assert.Equal(2, maxReaders);
    }

    [Fact]
    public void KRwSemaphore_WriterWaiting_NewReaderWaitsBehindIt()
    {
        using var m = TestMachine.Create();
        var order = new List<string>();

        m.Run(() =>
        {
            var k = m.Kernel;
            var sem = new KRwSemaphore(k, "sem");
            sem.DownRead();
            var writer = k.Scheduler.Spawn("writer", () =>
            {
                using (sem.ScopedWrite())
                    order.Add("writer");
            });
            k.Scheduler.Sleep(10_000);
            var reader = k.Scheduler.Spawn("reader", () =>
            {
                using (sem.ScopedRead())
                    order.Add("reader");
            });
            k.Scheduler.Sleep(10_000);
            order.Add("first reader unlocks");
            sem.UpRead();
            writer.Join();
            reader.Join();
        });

        Assert.Equal(["first reader unlocks", "writer", "reader"], order);
    }

    [Fact]
    public void KRwSemaphore_DowngradeWrite_LetsReaderInWhileHeld()
    {
        using var m = TestMachine.Create();
        bool readerRanWhileHeld = false;

        m.Run(() =>
        {
            var k = m.Kernel;
            var sem = new KRwSemaphore(k, "sem");
            sem.DownWrite();
            bool holding = true;
            var reader = k.Scheduler.Spawn("reader", () =>
            {
                using (sem.ScopedRead())
                    readerRanWhileHeld = Volatile.Read(ref holding);
            });
            sem.DowngradeWrite();
            reader.Join();
            Volatile.Write(ref holding, false);
            sem.UpRead();
        });

        Assert.True(readerRanWhileHeld);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
