namespace HmmEmu.Simulation.Tests;

/// <summary>A minimal sleeping lock built on <see cref="SimWaitQueue"/>, so tests can make simulated threads contend.</summary>
internal sealed class SimLock
{
    private readonly SimWaitQueue _wait;
    private int _held;

    public SimLock(Scheduler scheduler, string name) => _wait = new SimWaitQueue(scheduler, name);

    /// <summary>Takes the lock, sleeping while another simulated thread holds it. May sleep.</summary>
    public void Enter() => _wait.WaitUntil(this, static l => Interlocked.CompareExchange(ref l._held, 1, 0) == 0);

    /// <summary>Releases the lock and wakes the waiters.</summary>
    public void Exit()
    {
        Volatile.Write(ref _held, 0);
        _wait.WakeAll();
    }
}
