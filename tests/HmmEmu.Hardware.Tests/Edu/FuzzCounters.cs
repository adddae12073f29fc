namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>What an edu fuzz run did and saw, summed over seeds for the test's output.</summary>
internal sealed class FuzzCounters
{
    public long Operations { get; set; }

    public long CheckedCopies { get; set; }

    public long VerifiedBytes { get; set; }

    public long RandomDescriptors { get; set; }

    public long Refused { get; set; }

    public long RawReads { get; set; }

    public long RawWrites { get; set; }

    public long Resets { get; set; }

    public long FunctionLevelResets { get; set; }

    public long Invalidations { get; set; }

    public long Remaps { get; set; }

    public long Floods { get; set; }

    public long BogusConfigs { get; set; }

    public long Disruptions { get; set; }

    public long Clean { get; set; }

    public long Disrupted { get; set; }

    public long LostDisrupted { get; set; }

    public long Dropped { get; set; }

    public long Stalls { get; set; }

    public long BusErrors { get; set; }

    public long BadRegisterWrites { get; set; }

    public long Recoveries { get; set; }

    /// <summary>Adds <paramref name="other"/> into this.</summary>
    public void Add(FuzzCounters other)
    {
        foreach (var p in typeof(FuzzCounters).GetProperties())
            p.SetValue(this, (long)p.GetValue(this)! + (long)p.GetValue(other)!);
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Join(", ", typeof(FuzzCounters).GetProperties().Select(p => $"{p.Name}={p.GetValue(this)}"));
}
