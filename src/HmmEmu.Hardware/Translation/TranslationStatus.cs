namespace HmmEmu.Hardware.Translation;

/// <summary>The outcome of translating one device address.</summary>
public enum TranslationStatus : byte
{
    /// <summary>Translated.</summary>
    Ok = 0,

    /// <summary>No valid entry maps the address (a page fault the driver may resolve).</summary>
    NotPresent = 1,

    /// <summary>An entry maps the address but lacks a permission the access needs.</summary>
    Permission = 2,

    /// <summary>The address, or the output address of its entry, is outside what the device can reach.</summary>
    OutOfRange = 3,

    /// <summary>A page-table entry is malformed (reserved bits set, table outside memory).</summary>
    BadTable = 4,
}
