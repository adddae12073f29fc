using HmmEmu.Annotations;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Locking;

/// <summary>A kernel wait queue (wait_queue_head_t): sleep until a condition holds; wakers change state, then wake.</summary>
public sealed class WaitQueue
{
    private readonly HostKernel _kernel;
    private readonly SimWaitQueue _wait;

    /// <summary>Creates a wait queue; <paramref name="name"/> appears in deadlock reports.</summary>
    public WaitQueue(HostKernel kernel, string name)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        _wait = new SimWaitQueue(kernel.Scheduler, "waitqueue " + name);
    }

    /// <summary>
    /// Sleeps until <paramref name="condition"/>(<paramref name="state"/>) holds (wait_event). May sleep. The
    /// condition must read its state atomically and must not block.
    /// </summary>
    [BlockingWait]
    public void WaitEvent<TState>(TState state, Func<TState, bool> condition)
    {
        _kernel.Lockdep.MightSleep(TaskContext.For(_kernel), "wait_event");
        _wait.WaitUntil(state, condition);
    }

    /// <summary>Wakes every sleeper so it re-checks its condition (wake_up_all). Never sleeps.</summary>
    [NonBlocking]
    public void WakeUpAll() => _wait.WakeAll();
}
