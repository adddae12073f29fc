namespace HmmEmu.Hardware.Registers;

/// <summary>
/// A read-write configuration register the device takes in when it is enabled, as an NVMe controller latches its
/// queue registers: while the device is disabled a driver write is stored and becomes <see cref="Value"/>; while it is
/// enabled the write is refused (the register goes back to the latched value) and handed to the device's refusal
/// handler, which reports it. A reset of the file returns the latched value to 0.
/// </summary>
/// <remarks>
/// The write handler runs on the driver's thread, outside any lock, and never sleeps; <see cref="Value"/> may be read
/// from any thread.
/// </remarks>
public sealed class LatchedRegister
{
    private readonly Func<bool> _isEnabled;
    private readonly Action<Register, ulong> _onRefused;
    private ulong _latched;

    private LatchedRegister(RegisterFile file, ulong offset, RegisterWidth width, string name, string description,
        Func<bool> isEnabled, Action<Register, ulong> onRefused)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(isEnabled);
        ArgumentNullException.ThrowIfNull(onRefused);
        _isEnabled = isEnabled;
        _onRefused = onRefused;
        Register = file.Define(new RegisterDefinition
        {
            Offset = offset,
            Name = name,
            Description = description,
            Width = width,
            ReadWrite = width == RegisterWidth.Bits64 ? ~0UL : 0xFFFF_FFFFUL,
            OnWrite = OnWrite,
        });
        file.AddResetHook(() => Volatile.Write(ref _latched, 0));
    }

    /// <summary>The register in its file.</summary>
    public Register Register { get; }

    /// <summary>The value accepted last while the device was disabled (0 after reset): what the device takes in on enable.</summary>
    public ulong Value => Volatile.Read(ref _latched);

    /// <summary>
    /// Declares a 32-bit latched register. <paramref name="isEnabled"/> says whether writes are refused now;
    /// <paramref name="onRefused"/> gets the register and the refused value.
    /// </summary>
    public static LatchedRegister Define32(RegisterFile file, ulong offset, string name, string description,
        Func<bool> isEnabled, Action<Register, ulong> onRefused) =>
        new(file, offset, RegisterWidth.Bits32, name, description, isEnabled, onRefused);

    /// <summary>Declares a 64-bit latched register. See <see cref="Define32"/>.</summary>
    public static LatchedRegister Define64(RegisterFile file, ulong offset, string name, string description,
        Func<bool> isEnabled, Action<Register, ulong> onRefused) =>
        new(file, offset, RegisterWidth.Bits64, name, description, isEnabled, onRefused);

    private void OnWrite(ulong written, ulong value)
    {
        if (_isEnabled())
        {
            Register.Set(Volatile.Read(ref _latched));
            _onRefused(Register, value);
            return;
        }
        Volatile.Write(ref _latched, value);
    }
}
