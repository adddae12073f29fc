namespace HmmEmu.Testing.Coherence;

/// <summary>
/// Our drivers by the names <c>hmmemu explore --devices</c> takes ("mirror", "gpu", "nic"), and the conversion between such a
/// list and a <see cref="CoherenceConfig"/>: the leading run of one name is the target (that many devices of it), every
/// later name a companion with one device.
/// </summary>
public static class CoherenceTargets
{
    /// <summary>The names, in the order usage messages list them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["mirror", "gpu", "nic"];

    /// <summary>A fresh target for <paramref name="name"/>, or null for an unknown name.</summary>
    public static IMirrorTarget? ByName(string name) => name switch
    {
        "mirror" => new MirrorTarget(),
        "gpu" => new GpuTarget(),
        "nic" => new RnicTarget(),
        _ => null,
    };

    /// <summary>
    /// The configuration (with defaults for everything else) for a device list such as "mirror,gpu". Throws
    /// <see cref="ArgumentException"/> naming the bad entry and the names there are.
    /// </summary>
    public static CoherenceConfig Parse(string devices)
    {
        ArgumentNullException.ThrowIfNull(devices);
        var names = devices.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0)
            throw new ArgumentException($"the device list is empty: name one or more of {string.Join(", ", Names)}, separated by commas.");
        var targets = names.Select(n => ByName(n) ?? throw new ArgumentException($"unknown device '{n}': the devices are {string.Join(", ", Names)}.")).ToArray();
        int lead = names.TakeWhile(n => n == names[0]).Count();
        var config = new CoherenceConfig { Target = targets[0], Devices = lead, Companions = targets[lead..] };
        config.Validate();
        return config;
    }

    /// <summary>The device list that <see cref="Parse"/> turns back into <paramref name="config"/>'s devices, or null if one of them is not ours.</summary>
    public static string? DeviceList(CoherenceConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var names = Enumerable.Range(0, config.TotalDevices).Select(d => config.TargetOf(d)).ToArray();
        if (names.Any(t => t.GetType() != ByName(t.Name)?.GetType()))
            return null;
        // Parse takes the leading run as the target: a companion of the target's kind right after it would join the run.
        if (config.Companions.Count > 0 && config.Companions[0].Name == config.Target.Name)
            return null;
        return string.Join(",", names.Select(t => t.Name));
    }
}
