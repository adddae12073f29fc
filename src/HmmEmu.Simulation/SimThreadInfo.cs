namespace HmmEmu.Simulation;

/// <summary>What a trace exporter needs to know about a simulated thread: its id, name and kind.</summary>
/// <param name="Id">The thread's id (<see cref="SimThread.Id"/>).</param>
/// <param name="Name">The thread's name.</param>
/// <param name="Kind">What the thread stands for.</param>
public readonly record struct SimThreadInfo(int Id, string Name, SimThreadKind Kind);
