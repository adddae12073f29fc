namespace HmmEmu.Simulation.Tests;

public sealed class ThreadedSchedulerTests
{
    [Fact]
    public void Run_ThreadsContendOnLock_AllIncrementsLand()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1, Mode = SchedulerMode.Threaded });
        var gate = new SimLock(s, "counter lock");
        int counter = 0;

        s.Run(() =>
        {
            var threads = new List<SimThread>();
            for (int w = 0; w < 4; w++)
            {
                threads.Add(s.Spawn($"worker{w}", () =>
                {
                    for (int i = 0; i < 200; i++)
                    {
                        gate.Enter();
                        int seen = counter;
                        s.Yield();
                        counter = seen + 1;
                        gate.Exit();
                    }
                }));
            }
            foreach (var t in threads)
                t.Join();
        });

        Assert.Equal(800, counter);
    }

    [Fact]
    public void Run_ThreadThrows_ExceptionPropagatesWithSeed()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 77, Mode = SchedulerMode.Threaded });

        var ex = Assert.Throws<InvalidOperationException>(() => s.Run(() => throw new InvalidOperationException("boom")));

        Assert.Equal(77UL, Assert.IsType<ulong>(ex.Data["hmmemu.seed"]));
    }

    [Fact]
    public void Run_HungThreads_WatchdogThrowsSimulationDeadlockException()
    {
        using var s = Scheduler.Create(new SimulationOptions
        {
            Seed = 1,
            Mode = SchedulerMode.Threaded,
            ThreadedWatchdog = TimeSpan.FromMilliseconds(300),
        });
        var never = new SimWaitQueue(s, "never signalled");

        var ex = Assert.Throws<SimulationDeadlockException>(() => s.Run(() => never.WaitUntil(0, static _ => false)));

        Assert.Contains("never signalled", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Charge_OnSimulatedThread_AdvancesThatThreadsClock()
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 1, Mode = SchedulerMode.Threaded });
        ulong before = 0, after = 0;

        s.Run(() =>
        {
            before = s.Clock.Now;
            s.Charge(2_500);
            after = s.Clock.Now;
        });

        Assert.Equal(before + 2_500, after);
    }
}
