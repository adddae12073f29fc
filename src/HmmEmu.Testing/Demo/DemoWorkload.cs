namespace HmmEmu.Testing.Demo;

/// <summary>One showcase workload: an id for the table and <c>--tamper</c>, a title, and its body.</summary>
/// <param name="Id">Short name, e.g. <c>saxpy-fault</c>.</param>
/// <param name="Title">One line saying what it does.</param>
/// <param name="Run">Runs on process A's main thread of a booted <see cref="DemoMachine"/>; may sleep.</param>
public sealed record DemoWorkload(string Id, string Title, Func<DemoMachine, DemoOptions, DemoOutcome> Run);
