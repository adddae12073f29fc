using System;

namespace HmmEmu.Annotations;

/// <summary>
/// The delegate arguments of this method or constructor run later, on another thread (a work item, a task, a thread, a
/// timer): a reference-counted object they capture must be held by a reference taken before and dropped in the work
/// (RDMA002). <c>Task.Run</c>, <c>ThreadPool.QueueUserWorkItem</c>, <c>new Thread</c>, <c>new Timer</c> and the
/// simulation's <c>Scheduler.Spawn</c> are known without it.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor, Inherited = false)]
public sealed class DeferredWorkAttribute : Attribute
{
}
