namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>A violated fuzz invariant; the message names the seed and the operation so that the run replays.</summary>
internal sealed class FuzzFailure(string message) : Exception(message);
