namespace HmmEmu.Simulation;

/// <summary>The scheduling state of a simulated thread.</summary>
public enum SimThreadState
{
    /// <summary>Ready to run, waiting for the scheduler to pick it.</summary>
    Runnable,

    /// <summary>Currently running.</summary>
    Running,

    /// <summary>Waiting on a <see cref="SimWaitQueue"/> until another thread wakes it.</summary>
    Blocked,

    /// <summary>Waiting for virtual time to pass.</summary>
    Sleeping,

    /// <summary>Its body returned or threw.</summary>
    Finished,
}
