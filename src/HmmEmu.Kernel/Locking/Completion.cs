using HmmEmu.Annotations;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Locking;

/// <summary>
/// A one-shot or counted event (struct completion): <see cref="Complete"/> releases one waiter,
/// <see cref="CompleteAll"/> releases every present and future waiter until <see cref="Reinit"/>.
/// </summary>
public sealed class Completion
{
    private const int AllDone = int.MaxValue;

    private readonly HostKernel _kernel;
    private readonly SimWaitQueue _wait;
    private int _done;

    /// <summary>Creates a completion; <paramref name="name"/> appears in deadlock reports.</summary>
    public Completion(HostKernel kernel, string name)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
        _wait = new SimWaitQueue(kernel.Scheduler, "completion " + name);
    }

    /// <summary>Whether a wait would return at once.</summary>
    public bool IsDone => Volatile.Read(ref _done) > 0;

    /// <summary>Signals one waiter (complete). Never sleeps; safe in any context.</summary>
    [NonBlocking]
    public void Complete()
    {
        int d;
        do
        {
            d = Volatile.Read(ref _done);
            if (d == AllDone)
                break;
        }
        while (Interlocked.CompareExchange(ref _done, d + 1, d) != d);
        _wait.WakeAll();
    }

    /// <summary>Signals every waiter, now and until <see cref="Reinit"/> (complete_all).</summary>
    [NonBlocking]
    public void CompleteAll()
    {
        Volatile.Write(ref _done, AllDone);
        _wait.WakeAll();
    }

    /// <summary>Waits for the completion (wait_for_completion). May sleep.</summary>
    [BlockingWait]
    public void Wait()
    {
        _kernel.Lockdep.MightSleep(TaskContext.For(_kernel), "wait_for_completion");
        _kernel.Scheduler.Yield();
        _wait.WaitUntil(this, static c => c.TryConsume());
    }

    /// <summary>Consumes the completion if it is done, without waiting (try_wait_for_completion).</summary>
    [NonBlocking]
    public bool TryWait() => TryConsume();

    /// <summary>Makes the completion not-done again (reinit_completion).</summary>
    public void Reinit() => Volatile.Write(ref _done, 0);

    private bool TryConsume()
    {
        while (true)
        {
            int d = Volatile.Read(ref _done);
            if (d == 0)
                return false;
            if (d == AllDone)
                return true;
            if (Interlocked.CompareExchange(ref _done, d - 1, d) == d)
                return true;
        }
    }
}
