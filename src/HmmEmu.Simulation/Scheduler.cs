using System.Runtime.ExceptionServices;

namespace HmmEmu.Simulation;

/// <summary>
/// Runs simulated threads. The same kernel, device and driver code runs under either implementation:
/// <see cref="SchedulerMode.Deterministic"/>, where one seed fixes every interleaving, or
/// <see cref="SchedulerMode.Threaded"/>, where threads run in parallel. Simulated code marks its yield points
/// (<see cref="Yield"/>), blocks on <see cref="SimWaitQueue"/>s, and charges virtual time with <see cref="Charge"/>.
/// </summary>
public abstract class Scheduler : IDisposable
{
    [ThreadStatic]
    private static SimThread? t_current;

    private static readonly TraceEventType s_spawnEvent = new("sched", "spawn", "thread");
    private static readonly TraceEventType s_exitEvent = new("sched", "exit", "thread", "failed");

    private readonly SimRandom _root;
    private readonly Dictionary<int, SimThreadInfo> _threadInfos = [];
    private int _nextThreadId;

    /// <summary>Creates the scheduler's clock, trace and random root from the options.</summary>
    private protected Scheduler(SimulationOptions options)
    {
        Options = options;
        _root = new SimRandom(options.Seed);
        Clock = new VirtualClock(this);
        Trace = new Trace(this);
    }

    /// <summary>Creates a scheduler of the mode the options name.</summary>
    public static Scheduler Create(SimulationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Mode switch
        {
            SchedulerMode.Deterministic => new DeterministicScheduler(options),
            SchedulerMode.Threaded => new ThreadedScheduler(options),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Mode, "Unknown scheduler mode."),
        };
    }

    /// <summary>The simulated thread the caller runs on, or null for a host thread outside the simulation.</summary>
    public static SimThread? CurrentThread => t_current;

    /// <summary>The options this scheduler was created with.</summary>
    public SimulationOptions Options { get; }

    /// <summary>Deterministic or threaded.</summary>
    public SchedulerMode Mode => Options.Mode;

    /// <summary>The master seed.</summary>
    public ulong Seed => Options.Seed;

    /// <summary>Virtual time.</summary>
    public VirtualClock Clock { get; }

    /// <summary>The hashed event trace.</summary>
    public Trace Trace { get; }

    /// <summary>The virtual-time cost model.</summary>
    public TimingModel Timing => Options.Timing;

    /// <summary>
    /// Deterministic mode: the decision taken at each choice point so far, in order (see <see cref="ScheduleScript"/>
    /// for their meaning; <see cref="ScheduleScript.FromLog"/> turns them into a script that replays this run).
    /// Empty in threaded mode.
    /// </summary>
    public virtual IReadOnlyList<int> Decisions => [];

    /// <summary>Whether the calling thread is one of this scheduler's simulated threads.</summary>
    public bool IsSimulatedThread => t_current is { } t && ReferenceEquals(t.Scheduler, this);

    /// <summary>
    /// A random stream for a named component, derived from the seed and the name only. In threaded mode the draws
    /// are still seeded, but the order in which threads draw them is not.
    /// </summary>
    public SimRandom CreateRandom(string component) => _root.Fork(component);

    /// <summary>
    /// Creates a simulated thread. In deterministic mode it becomes runnable and first runs when the scheduler picks
    /// it (inside <see cref="Run(Action?)"/>); in threaded mode it starts at once.
    /// </summary>
    /// <param name="name">Name for traces and reports.</param>
    /// <param name="body">The code the thread runs.</param>
    /// <param name="kind">What the thread stands for.</param>
    /// <param name="daemon">Daemon threads (idle workers) do not keep <see cref="Run(Action?)"/> from returning.</param>
    public SimThread Spawn(string name, Action body, SimThreadKind kind = SimThreadKind.Kernel, bool daemon = false)
    {
        var thread = CreateThread(name, body, kind, daemon);
        Carriers.Start(thread, ThreadMain);
        return thread;
    }

    /// <summary>Creates and registers a thread (id, trace event) without giving it an OS thread to run on.</summary>
    private protected SimThread CreateThread(string name, Action body, SimThreadKind kind, bool daemon)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(body);
        int id = Interlocked.Increment(ref _nextThreadId);
        var thread = new SimThread(this, id, name, kind, daemon, body);
        thread.LocalTime = CurrentTime();
        lock (_threadInfos)
            _threadInfos[id] = new SimThreadInfo(id, name, kind);
        Register(thread);
        Trace.Record(s_spawnEvent, (ulong)id);
        return thread;
    }

    /// <summary>
    /// The id, name and kind of the thread with <paramref name="id"/>, for every thread this scheduler ever created
    /// (also after it finished); false for an unknown id (and for 0, code outside any simulated thread).
    /// </summary>
    public bool TryGetThreadInfo(int id, out SimThreadInfo info)
    {
        lock (_threadInfos)
            return _threadInfos.TryGetValue(id, out info);
    }

    /// <summary>
    /// Runs the simulation until it is quiescent: <paramref name="main"/> (if given) and every other non-daemon
    /// thread has finished, and no daemon thread is runnable. Rethrows the first exception a simulated thread threw
    /// (with the seed and thread recorded in its <see cref="Exception.Data"/>), or a
    /// <see cref="SimulationDeadlockException"/> if the simulated threads deadlock.
    /// </summary>
    /// <remarks>Must be called from a host thread, not from a simulated thread.</remarks>
    public void Run(Action? main = null)
    {
        if (main is null)
            RunChecked(null, null, SimThreadKind.User);
        else
            RunChecked("main", main, SimThreadKind.User);
    }

    /// <summary>
    /// Like <see cref="Spawn"/> followed by <see cref="Run(Action?)"/>: <paramref name="body"/> becomes a new simulated thread
    /// named <paramref name="name"/>, and the simulation runs until it is quiescent. The same ids, decisions and
    /// trace as the two calls; but in deterministic mode the calling host thread carries the new thread itself, so a
    /// step that needs no other thread costs no hand-off between OS threads.
    /// </summary>
    /// <remarks>Must be called from a host thread, not from a simulated thread.</remarks>
    public void Run(string name, Action body, SimThreadKind kind = SimThreadKind.User)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(body);
        RunChecked(name, body, kind);
    }

    private void RunChecked(string? name, Action? body, SimThreadKind kind)
    {
        if (t_current is not null)
            throw new InvalidOperationException(
                $"Scheduler.Run was called from simulated thread '{t_current.Name}'. Run is the host's entry point; " +
                "inside the simulation, spawn a thread with Scheduler.Spawn and Join it instead.");
        RunCore(name, body, kind);
    }

    /// <summary>
    /// Lets background work finish: like <see cref="Run(Action?)"/> with no new thread, but virtual time also advances
    /// for daemon threads that sleep (a device engine charging the time of an operation, a timer), which
    /// <see cref="Run(Action?)"/> leaves where they are once no other thread is left. Stops when no thread is runnable
    /// or sleeping, or when the next wake-up lies more than <paramref name="maxNs"/> virtual nanoseconds ahead of the
    /// start. Returns whether everything settled (no thread still sleeping). Host threads only. In threaded mode
    /// it returns true at once.
    /// </summary>
    public bool Settle(ulong maxNs)
    {
        if (t_current is not null)
            throw new InvalidOperationException($"Scheduler.Settle was called from simulated thread '{t_current.Name}'; it is the host's.");
        return SettleCore(maxNs);
    }

    private protected virtual bool SettleCore(ulong maxNs) => true;

    /// <summary>
    /// A yield point. In deterministic mode the scheduler may (by the seed) let another runnable thread run first;
    /// in threaded mode it costs nothing.
    /// </summary>
    public abstract void Yield();

    /// <summary>Sleeps for <paramref name="ns"/> virtual nanoseconds, letting other threads run meanwhile.</summary>
    public abstract void Sleep(ulong ns);

    /// <summary>
    /// Charges <paramref name="ns"/> virtual nanoseconds of work to the calling thread. In deterministic mode other
    /// threads may run during that time, exactly as if the work took that long.
    /// </summary>
    public abstract void Charge(ulong ns);

    /// <summary>Stops every simulated thread and releases their OS threads.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Aborts the remaining simulated threads.</summary>
    protected virtual void Dispose(bool disposing) { }

    internal abstract ulong CurrentTime();

    internal abstract ulong HorizonTime();

    internal abstract bool IsAborting { get; }

    private protected abstract void Register(SimThread thread);

    /// <summary>Runs to quiescence; with a <paramref name="main"/>, first creates it as a thread named <paramref name="name"/>.</summary>
    private protected abstract void RunCore(string? name, Action? main, SimThreadKind kind);

    private protected abstract void WaitForFirstTurn(SimThread thread);

    private protected abstract void OnThreadExit(SimThread thread, Exception? failure);

    /// <summary>Bookkeeping for a thread unwound by an abort; it must not schedule anything.</summary>
    private protected abstract void OnThreadAborted(SimThread thread);

    /// <summary>Blocks the current simulated thread on <paramref name="queue"/> until <paramref name="condition"/> holds.</summary>
    internal abstract void WaitOn<TState>(SimWaitQueue queue, TState state, Func<TState, bool> condition);

    /// <summary>Wakes every thread waiting on <paramref name="queue"/>.</summary>
    internal abstract void WakeAll(SimWaitQueue queue);

    private protected static void SetCurrent(SimThread? thread) => t_current = thread;

    /// <summary>Called by a carrier when its simulated thread has unwound, before it carries another.</summary>
    internal static void ClearCurrent() => t_current = null;

    /// <summary>Runs <paramref name="thread"/> (created by <see cref="CreateThread"/>) on the calling host thread, as a carrier would.</summary>
    private protected void Carry(SimThread thread)
    {
        try
        {
            ThreadMain(thread);
        }
        finally
        {
            t_current = null;
            thread.MarkUnwound();
        }
    }

    private void ThreadMain(SimThread thread)
    {
        t_current = thread;
        Exception? failure = null;
        try
        {
            WaitForFirstTurn(thread);
            thread.Body();
        }
        catch (SimulationAbortedException)
        {
            OnThreadAborted(thread);
            return;
        }
#pragma warning disable CA1031 // A simulated thread's failure is captured and rethrown by Run on the host thread.
        catch (Exception e)
#pragma warning restore CA1031
        {
            failure = e;
            e.Data["hmmemu.seed"] = Seed;
            e.Data["hmmemu.thread"] = $"T{thread.Id} {thread.Name}";
            thread.Failure = e;
        }
        try
        {
            Trace.Record(s_exitEvent, (ulong)thread.Id, failure is null ? 0UL : 1UL);
        }
        catch (SimulationAbortedException)
        {
            OnThreadAborted(thread);
            return;
        }
        OnThreadExit(thread, failure);
    }

    /// <summary>Rethrows a captured simulated-thread failure on the host thread, keeping its original stack.</summary>
    private protected static void Rethrow(Exception failure) => ExceptionDispatchInfo.Capture(failure).Throw();
}
