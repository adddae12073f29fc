namespace HmmEmu.Hardware.Registers;

/// <summary>
/// The declaration of one register: where it is, what it is called, its reset value, and which bits the driver may
/// write how. Bits in none of the masks are read-only. Declare either masks or <see cref="Fields"/>, not both.
/// </summary>
public sealed record RegisterDefinition
{
    /// <summary>Byte offset in the register file; a multiple of the register's size.</summary>
    public required ulong Offset { get; init; }

    /// <summary>Register name, unique in its file, e.g. "STATUS".</summary>
    public required string Name { get; init; }

    /// <summary>One sentence for the documentation table.</summary>
    public string Description { get; init; } = "";

    /// <summary>32 or 64 bits.</summary>
    public RegisterWidth Width { get; init; } = RegisterWidth.Bits32;

    /// <summary>Value after reset.</summary>
    public ulong Reset { get; init; }

    /// <summary>Bits a driver write stores (read-write).</summary>
    public ulong ReadWrite { get; init; }

    /// <summary>Bits a driver clears by writing 1 (write-1-to-clear).</summary>
    public ulong WriteOneToClear { get; init; }

    /// <summary>Bits a driver write stores but a driver read returns as 0 (write-only).</summary>
    public ulong WriteOnly { get; init; }

    /// <summary>Named fields; when given, the masks are derived from them and must be left 0.</summary>
    public IReadOnlyList<RegisterField> Fields { get; init; } = [];

    /// <summary>Makes the register a doorbell: called after every driver write to it.</summary>
    public RegisterWriteHandler? OnWrite { get; init; }

    /// <summary>Computes the value a driver read returns, instead of the stored value.</summary>
    public RegisterReadHook? OnRead { get; init; }
}
