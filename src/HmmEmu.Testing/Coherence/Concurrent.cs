namespace HmmEmu.Testing.Coherence;

/// <summary>
/// Two commands started together on two threads and interleaved by the seeded scheduler: a device fault racing an
/// munmap, a device write racing fork, a mirror read racing the OOM reaper. The outcome is accepted if, word by word,
/// some order of the two explains it, and the model afterwards allows what either order leaves.
/// </summary>
public sealed record Concurrent(CoherenceCommand A, CoherenceCommand B) : CoherenceCommand
{
    /// <inheritdoc />
    public override int Process => A.Process;

    /// <inheritdoc />
    public override CommandKinds Kind => CommandKinds.Concurrent;

    /// <inheritdoc />
    public override bool ChangesShape => A.ChangesShape || B.ChangesShape;

    /// <inheritdoc />
    public override bool Pre(ShapeModel model) =>
        A is not Concurrent && B is not Concurrent && !(A.ChangesShape && B.ChangesShape)
        && A.Pre(model) && B.Pre(model) && A.Pre(B.Next(model)) && B.Pre(A.Next(model))
        && MayOverlap(A, B) && MayOverlap(B, A);

    // What user space cannot do at once: exit while another thread of the process runs, close a file while an
    // ioctl on it runs. The OOM reaper, though, does race the victim's own threads (its exit waits for them).
    private static bool MayOverlap(CoherenceCommand x, CoherenceCommand y) => x switch
    {
        Exit => y.Process != x.Process,
        OomKill => y.Process != x.Process || y is DeviceCommand and not Reopen,
        Reopen r => y is not DeviceCommand d || d.Process != r.Process || d.Device != r.Device,
        _ => true,
    };

    /// <inheritdoc />
    public override ShapeModel Next(ShapeModel model) => B.Next(A.Next(model));

    /// <summary>Not used: <see cref="CoherenceSystem"/> runs the pair itself.</summary>
    public override CommandOutcome Execute(CoherenceSystem system) =>
        throw new InvalidOperationException("A concurrent pair is run by CoherenceSystem.RunConcurrent.");

    /// <summary>Not used: the pair is checked by <see cref="CoherenceSystem"/> against both orders.</summary>
    public override void Expect(IdealMemory memory, CommandOutcome outcome, Expectations expectations) =>
        throw new InvalidOperationException("A concurrent pair is checked by CoherenceSystem.RunConcurrent.");

    /// <summary>Not used.</summary>
    public override void Apply(IdealMemory memory, CommandOutcome outcome) =>
        throw new InvalidOperationException("A concurrent pair is applied by CoherenceSystem.RunConcurrent.");

    /// <inheritdoc />
    public override string ToString() => $"{A} || {B}";
}
