namespace HmmEmu.Kernel.Notifiers;

/// <summary>Where an interval notifier is in its life.</summary>
public enum NotifierState
{
    /// <summary>Not inserted yet.</summary>
    Unregistered,

    /// <summary>In the interval tree: receives invalidations.</summary>
    Inserted,

    /// <summary>Inserted while an invalidation ran: joins the tree when the last running invalidation ends.</summary>
    PendingInsert,

    /// <summary>Removed while an invalidation ran: leaves the tree when the last running invalidation ends.</summary>
    PendingRemove,

    /// <summary>Removed: receives nothing more.</summary>
    Removed,
}
