using HmmEmu.Annotations;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Locking;

/// <summary>
/// A work queue (workqueue_struct) served by kernel worker threads. Items run in process context in FIFO order.
/// <see cref="Flush"/> waits for every item queued before it. The lock checker treats "running an item of this
/// queue" as a pseudo-lock, so flushing while holding a lock that a queued item takes is reported.
/// </summary>
public sealed class WorkQueue : IDisposable
{
    private static readonly TraceEventType s_runEvent = new("workqueue", "run", "seq");

    private readonly HostKernel _kernel;
    private readonly Lock _lock = new();
    private readonly Queue<WorkItem> _items = new();
    private readonly SortedSet<long> _inFlight = [];
    private readonly SimWaitQueue _work;
    private readonly SimWaitQueue _progress;
    private readonly LockClass _map;
    private long _queued;
    private bool _stopping;

    /// <summary>Creates a queue with <paramref name="workers"/> worker threads (daemon simulated threads).</summary>
    public WorkQueue(HostKernel kernel, string name, int workers = 1)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        _kernel = kernel;
        Name = name;
        _work = new SimWaitQueue(kernel.Scheduler, $"workqueue {name} idle");
        _progress = new SimWaitQueue(kernel.Scheduler, $"flush_workqueue({name})");
        _map = kernel.Lockdep.GetClass("workqueue " + name, LockKind.Map);
        for (int i = 0; i < workers; i++)
            kernel.Scheduler.Spawn($"kworker/{name}:{i}", WorkerLoop, SimThreadKind.Kernel, daemon: true);
    }

    /// <summary>The queue's name.</summary>
    public string Name { get; }

    /// <summary>
    /// Queues <paramref name="item"/> (queue_work). Returns false if it was already pending. Never sleeps; safe in
    /// atomic and interrupt context.
    /// </summary>
    [NonBlocking]
    public bool Queue(WorkItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (item.IsPending)
                return false;
            item.IsPending = true;
            item.Sequence = ++_queued;
            _items.Enqueue(item);
            _inFlight.Add(item.Sequence);
        }
        _work.WakeAll();
        return true;
    }

    /// <summary>Waits until every item queued before this call has finished (flush_workqueue). May sleep.</summary>
    [BlockingWait]
    public void Flush()
    {
        var me = TaskContext.For(_kernel);
        _kernel.Lockdep.MightSleep(me, $"flush_workqueue({Name})");
        _kernel.Lockdep.MapTouch(me, _map);
        long target;
        lock (_lock)
            target = _queued;
        _progress.WaitUntil((this, target), static s => s.Item1.CompletedThrough() >= s.target);
    }

    /// <summary>Stops the workers once the queue is empty.</summary>
    public void Dispose()
    {
        lock (_lock)
            _stopping = true;
        _work.WakeAll();
    }

    private long CompletedThrough()
    {
        lock (_lock)
            return _inFlight.Count == 0 ? _queued : _inFlight.Min - 1;
    }

    private bool HasWorkOrStopping()
    {
        lock (_lock)
            return _items.Count > 0 || _stopping;
    }

    private void WorkerLoop()
    {
        var me = TaskContext.For(_kernel);
        while (true)
        {
            _work.WaitUntil(this, static q => q.HasWorkOrStopping());
            WorkItem item;
            long sequence;
            lock (_lock)
            {
                if (_items.Count == 0)
                    return; // stopping and drained
                item = _items.Dequeue();
                item.IsPending = false;
                // The item may be queued again while it runs, which gives it a new sequence: retire this run's.
                sequence = item.Sequence;
            }
            _kernel.Trace.Record(s_runEvent, (ulong)sequence);
            _kernel.Lockdep.MapAcquire(me, _map);
            try
            {
                item.Function();
            }
            finally
            {
                _kernel.Lockdep.MapRelease(me, _map);
                lock (_lock)
                    _inFlight.Remove(sequence);
                _progress.WakeAll();
            }
        }
    }
}
