using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Locking;

/// <summary>
/// Per-thread kernel state (the parts of task_struct and preempt_count the lock checker needs): which locks the
/// thread holds, whether it is in atomic, interrupt or non-blockable context, and which process it belongs to.
/// One instance per (simulated thread, kernel): an OS thread carries one simulated thread at a time, then the next.
/// </summary>
internal sealed class TaskContext
{
    [ThreadStatic]
    private static TaskContext? t_current;

    private HeldLock[] _held = new HeldLock[16];

    private TaskContext(HostKernel kernel)
    {
        Kernel = kernel;
        Thread = Scheduler.CurrentThread;
    }

    public HostKernel Kernel { get; }

    public SimThread? Thread { get; }

    public string Name => Thread is null ? "host" : $"T{Thread.Id} '{Thread.Name}'";

    /// <summary>Spinlocks held, explicit preemption disables and interrupt nesting: nonzero means atomic.</summary>
    public int AtomicDepth;

    /// <summary>Interrupt handler nesting: nonzero means hard-irq context.</summary>
    public int IrqDepth;

    /// <summary>Regions with interrupts disabled (spin_lock_irqsave and friends).</summary>
    public int IrqsOffDepth;

    /// <summary>Non-blockable mmu-notifier invalidation callbacks on the stack: sleeping is forbidden.</summary>
    public int NonBlockDepth;

    /// <summary>mmu-notifier invalidate callbacks on the stack.</summary>
    public int NotifierCallbackDepth;

    /// <summary>How many locks were held when the innermost invalidate callback was entered.</summary>
    public int CallbackHeldBase;

    /// <summary>Inside direct reclaim (PF_MEMALLOC): allocations do not recurse into reclaim.</summary>
    public int ReclaimDepth;

    /// <summary>The simulated process this thread belongs to, for user threads.</summary>
    public Process? Process;

    public int HeldCount { get; private set; }

    public ReadOnlySpan<HeldLock> Held => _held.AsSpan(0, HeldCount);

    public static TaskContext For(HostKernel kernel)
    {
        var t = t_current;
        if (t is not null && ReferenceEquals(t.Kernel, kernel) && ReferenceEquals(t.Thread, Scheduler.CurrentThread))
            return t;
        t = new TaskContext(kernel);
        t_current = t;
        return t;
    }

    public void Push(in HeldLock held)
    {
        if (HeldCount == _held.Length)
            Array.Resize(ref _held, _held.Length * 2);
        _held[HeldCount++] = held;
    }

    /// <summary>Removes the most recent entry for <paramref name="instance"/>; returns it, or null if not held.</summary>
    public HeldLock? Pop(object instance)
    {
        // Locks are almost always released in reverse order: the top entry, without shifting the rest.
        int top = HeldCount - 1;
        if (top >= 0 && ReferenceEquals(_held[top].Instance, instance))
        {
            var last = _held[top];
            _held[top] = default;
            HeldCount = top;
            return last;
        }
        for (int i = top - 1; i >= 0; i--)
        {
            if (ReferenceEquals(_held[i].Instance, instance))
            {
                var h = _held[i];
                Array.Copy(_held, i + 1, _held, i, HeldCount - i - 1);
                HeldCount--;
                _held[HeldCount] = default;
                return h;
            }
        }
        return null;
    }

    public bool Holds(object instance)
    {
        for (int i = HeldCount - 1; i >= 0; i--)
        {
            if (ReferenceEquals(_held[i].Instance, instance))
                return true;
        }
        return false;
    }

    public bool HoldsExclusive(object instance)
    {
        for (int i = HeldCount - 1; i >= 0; i--)
        {
            if (ReferenceEquals(_held[i].Instance, instance))
                return !_held[i].Shared;
        }
        return false;
    }

    public string FirstSpinlockName()
    {
        for (int i = HeldCount - 1; i >= 0; i--)
        {
            if (_held[i].Class.Kind == LockKind.SpinLock)
                return _held[i].Class.Name;
        }
        return "(none)";
    }
}
