namespace HmmEmu.Simulation;

/// <summary>
/// The OS threads that carry simulated threads. Starting an OS thread costs more than a whole checked coherence step,
/// and the suites start one simulated thread per command, so a carrier whose simulated thread has finished (or was
/// aborted) waits for the next one instead of exiting. Carriers are shared by every scheduler in the process; which
/// carrier runs a simulated thread decides nothing in the simulation (the baton does), so determinism is untouched.
/// </summary>
internal static class Carriers
{
    // Idle carriers beyond this many exit; an idle carrier also exits after IdleTimeout of host time.
    private const int MaxIdle = 64;
    private const int StackSize = 1 << 20;
    private static readonly TimeSpan s_idleTimeout = TimeSpan.FromSeconds(30);
    private static readonly Lock s_gate = new();
    private static readonly List<Carrier> s_idle = [];

    /// <summary>Runs <paramref name="main"/>(<paramref name="thread"/>) on an idle carrier, or on a new one.</summary>
    public static void Start(SimThread thread, Action<SimThread> main)
    {
        Carrier? carrier = null;
        lock (s_gate)
        {
            if (s_idle.Count > 0)
            {
                carrier = s_idle[^1];
                s_idle.RemoveAt(s_idle.Count - 1);
            }
        }
        if (carrier is null)
        {
            carrier = new Carrier();
            carrier.Assign(thread, main);
            carrier.Os.Start();
        }
        else
        {
            carrier.Assign(thread, main);
            carrier.Go.Release();
        }
    }

    private sealed class Carrier
    {
        private SimThread? _thread;
        private Action<SimThread>? _main;

        public Carrier()
        {
            Os = new Thread(Loop, StackSize) { IsBackground = true, Name = "hmmemu sim carrier" };
        }

        public Thread Os { get; }

        public SemaphoreSlim Go { get; } = new(0, 1);

        public void Assign(SimThread thread, Action<SimThread> main)
        {
            _thread = thread;
            _main = main;
        }

        private void Loop()
        {
            while (true)
            {
                var thread = _thread!;
                var main = _main!;
                _thread = null;
                _main = null;
                try
                {
                    main(thread);
                }
                finally
                {
                    Scheduler.ClearCurrent();
                    thread.MarkUnwound();
                }
                if (!Park())
                    return;
            }
        }

        // Waits for the next simulated thread; false when the carrier should exit instead.
        private bool Park()
        {
            lock (s_gate)
            {
                if (s_idle.Count >= MaxIdle)
                    return false;
                s_idle.Add(this);
            }
            if (Go.Wait(s_idleTimeout))
                return true;
            lock (s_gate)
            {
                if (s_idle.Remove(this))
                    return false;
            }
            // Start took this carrier just as the wait timed out: its release is on the way.
            Go.Wait();
            return true;
        }
    }
}
