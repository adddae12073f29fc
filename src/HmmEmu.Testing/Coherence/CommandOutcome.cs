using HmmEmu.Kernel;

namespace HmmEmu.Testing.Coherence;

/// <summary>What a command observed when it ran: its result code and the tracked words it read (page-major).</summary>
/// <param name="Err">The result code (Ok, or the errno the kernel or driver returned; EFAULT for a CPU SIGSEGV).</param>
/// <param name="Words">The tracked words read, or null if the command reads nothing.</param>
/// <param name="Previous">The old value an atomic returned (null when the device does not return it).</param>
public sealed record CommandOutcome(Errno Err, ulong[]? Words = null, long? Previous = null)
{
    /// <summary>
    /// Set by the system when the command failed because a concurrent command aborted it (a reset of its device): the
    /// failure is allowed, and whatever it was doing may or may not have taken effect.
    /// </summary>
    public bool Aborted { get; init; }

    /// <summary>Success without data.</summary>
    public static CommandOutcome Ok { get; } = new(Errno.Ok);

    /// <inheritdoc />
    public override string ToString() => Err == Errno.Ok ? "ok" : Err.ToString();
}

/// <summary>
/// Problems one command's outcome shows against one model state, keyed by what they are about ("errno", "w3.1"), so
/// that for two concurrent commands a problem counts only if it shows against every order they may have run in.
/// </summary>
public sealed class Expectations
{
    private readonly SortedDictionary<string, string> _problems = new(StringComparer.Ordinal);

    /// <summary>Records a problem under <paramref name="key"/> (the first one per key is kept).</summary>
    public void Fail(string key, string message) => _problems.TryAdd(key, message);

    /// <summary>The problems, in key order.</summary>
    public IReadOnlyDictionary<string, string> Problems => _problems;

    /// <summary>The problems of <paramref name="first"/> whose key also shows in every one of <paramref name="others"/>.</summary>
    public static IEnumerable<string> InAll(Expectations first, params Expectations[] others) =>
        first._problems.Where(kv => others.All(o => o._problems.ContainsKey(kv.Key))).Select(kv => kv.Value);
}
