namespace HmmEmu.Kernel.Locking;

/// <summary>
/// A unit of deferred work (struct work_struct). Queuing an item that is already pending does nothing, as in the
/// kernel; once it starts running it can be queued again.
/// </summary>
public sealed class WorkItem
{
    /// <summary>Creates a work item that runs <paramref name="function"/> on a work-queue worker.</summary>
    [HmmEmu.Annotations.DeferredWork]
    public WorkItem(string name, Action function)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(function);
        Name = name;
        Function = function;
    }

    /// <summary>The item's name, for traces.</summary>
    public string Name { get; }

    /// <summary>The code the worker runs. It runs in process context: it may sleep.</summary>
    public Action Function { get; }

    /// <summary>Whether the item is queued and has not started running yet.</summary>
    public bool IsPending { get; internal set; }

    internal long Sequence;
}
