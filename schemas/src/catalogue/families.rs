//! The event families Zoom documents since the seed's table (2021), each with the apps that
//! receive it and where its names come from. `Z` = the user-level Zoom app, `A` = the
//! account-level Zoom Admin app; Zoom sends these to any app subscribed with the product's
//! scopes, so both unless a family is account-level only (Zoom Rooms).
//!
//! Sources (read December 2026):
//! - Zoom's webhook reference index, <https://developers.zoom.us/docs/api/webhooks/> (Meetings,
//!   RTMS, Chat, Phone, Rooms, Users), and the changelog entries cited per family below;
//! - Pipedream's Zoom components, `components/zoom/sources/common/constants.mjs` in
//!   github.com/PipedreamHQ/pipedream (`CUSTOM_EVENT_TYPES`, `PHONE_EVENT_TYPES`).

use super::{row, EventDef};

const fn both(name: &'static str, description: &'static str) -> EventDef {
    row(name, description, true, true, name, None)
}

const fn admin(name: &'static str, description: &'static str) -> EventDef {
    row(name, description, false, true, name, None)
}

/// One family: its names in short (`phone.*`; a reading aid, not a sources-file pattern), what
/// it is, where its names come from, its rows.
pub struct Family {
    pub names: &'static str,
    pub title: &'static str,
    pub cited: &'static str,
    pub rows: &'static [EventDef],
}

#[rustfmt::skip]
pub static FAMILIES: &[Family] = &[
    Family {
        names: "meeting.participant_left",
        title: "Participant left a meeting",
        cited: "Pipedream CUSTOM_EVENT_TYPES.MEETING_PARTICIPANT_LEFT; Zoom changelog 2026-11-23 (custom_keys in meeting.participant_left)",
        rows: &[both("meeting.participant_left", "Host or attendee left meeting")],
    },
    Family {
        names: "meeting.summary_*",
        title: "AI Companion meeting summaries",
        cited: "Zoom changelog Meetings 2024-05-20 (summary_recovered/trashed/deleted), 2024-06-17 (summary_shared); Meetings events reference (summary_completed, summary_updated, aic_transcript_completed)",
        rows: &[
            both("meeting.summary_completed", "Meeting summary completed"),
            both("meeting.summary_updated", "Meeting summary updated"),
            both("meeting.summary_shared", "Meeting summary shared"),
            both("meeting.summary_trashed", "Meeting summary moved to trash"),
            both("meeting.summary_deleted", "Meeting summary permanently deleted"),
            both("meeting.summary_recovered", "Meeting summary recovered from trash"),
            both("meeting.aic_transcript_completed", "AI Companion meeting transcript completed"),
        ],
    },
    Family {
        names: "*.chat_message_*",
        title: "In-meeting and webinar chat messages",
        cited: "Zoom changelog Meetings 2026-01-12 (meeting/webinar chat_message_sent, chat_message_file_sent)",
        rows: &[
            both("meeting.chat_message_sent", "Chat message sent in a meeting"),
            both("meeting.chat_message_file_sent", "File sent in a meeting's chat"),
            both("webinar.chat_message_sent", "Chat message sent in a webinar"),
            both("webinar.chat_message_file_sent", "File sent in a webinar's chat"),
        ],
    },
    Family {
        names: "*.participant_role_changed, *.participant_feedback",
        title: "Participant role changes and feedback",
        cited: "Zoom changelog Zoom One 2022-05-23 (participant_role_changed, participant_feedback for meetings and webinars)",
        rows: &[
            both("meeting.participant_role_changed", "A meeting participant's role changed"),
            both("webinar.participant_role_changed", "A webinar participant's role changed"),
            both("meeting.participant_feedback", "A meeting participant gave feedback"),
            both("webinar.participant_feedback", "A webinar participant gave feedback"),
        ],
    },
    Family {
        names: "meeting.*breakout_room*",
        title: "Breakout rooms",
        cited: "Zoom changelog Meetings 2026-11-23 (participant_joined/left_breakout_room, breakout_room_sharing_started/ended)",
        rows: &[
            both("meeting.participant_joined_breakout_room", "Participant joined a breakout room"),
            both("meeting.participant_left_breakout_room", "Participant left a breakout room"),
            both("meeting.breakout_room_sharing_started", "Screen sharing started in a breakout room"),
            both("meeting.breakout_room_sharing_ended", "Screen sharing ended in a breakout room"),
        ],
    },
    Family {
        names: "meeting.converted_to_webinar, webinar.converted_to_meeting",
        title: "Conversions between meetings and webinars",
        cited: "Zoom changelog Meetings 2025-09-15",
        rows: &[
            both("meeting.converted_to_webinar", "Meeting converted to a webinar"),
            both("webinar.converted_to_meeting", "Webinar converted to a meeting"),
        ],
    },
    Family {
        names: "webinar.permanently_deleted, webinar.recovered",
        title: "Webinar trash",
        cited: "Zoom Webinars events reference (webinar.permanently_deleted, webinar.recovered)",
        rows: &[
            both("webinar.permanently_deleted", "Webinar permanently deleted"),
            both("webinar.recovered", "Webinar recovered from trash"),
        ],
    },
    Family {
        names: "recording.archive_files_completed",
        title: "Archived recording files",
        cited: "Zoom Meetings events reference (recording.archive_files_completed)",
        rows: &[both("recording.archive_files_completed", "Archived meeting files are ready")],
    },
    Family {
        names: "*.rtms_*",
        title: "Realtime Media Streams (RTMS)",
        cited: "Zoom RTMS events reference (developers.zoom.us/docs/api/rtms/events/, as snapshotted 2026-02-07: meeting.rtms_interrupted); changelog RTMS 2026-05-09 (meeting.rtms_started, webinar.rtms_started)",
        rows: &[
            both("meeting.rtms_started", "A meeting's realtime media stream started"),
            both("meeting.rtms_stopped", "A meeting's realtime media stream stopped"),
            both("meeting.rtms_interrupted", "A meeting's realtime media stream was interrupted"),
            both("webinar.rtms_started", "A webinar's realtime media stream started"),
            both("webinar.rtms_stopped", "A webinar's realtime media stream stopped"),
        ],
    },
    Family {
        names: "phone.*",
        title: "Zoom Phone",
        cited: "Pipedream components/zoom/sources/common/constants.mjs PHONE_EVENT_TYPES (42 events); Zoom Phone events reference",
        rows: &[
            both("phone.call_log_deleted", "Call log deleted"),
            both("phone.call_log_permanently_deleted", "Call log permanently deleted"),
            both("phone.callee_answered", "Callee answered a call"),
            both("phone.callee_call_log_completed", "Callee's call log completed"),
            both("phone.callee_ended", "Callee ended a call"),
            both("phone.callee_hold", "Callee put a call on hold"),
            both("phone.callee_meeting_inviting", "Callee invited to a meeting from a call"),
            both("phone.callee_missed", "Callee missed a call"),
            both("phone.callee_mute", "Callee muted a call"),
            both("phone.callee_rejected", "Callee rejected a call"),
            both("phone.callee_ringing", "Callee's phone is ringing"),
            both("phone.callee_unhold", "Callee resumed a held call"),
            both("phone.callee_unmute", "Callee unmuted a call"),
            both("phone.caller_call_log_completed", "Caller's call log completed"),
            both("phone.caller_connected", "Caller connected"),
            both("phone.caller_ended", "Caller ended a call"),
            both("phone.caller_hold", "Caller put a call on hold"),
            both("phone.caller_meeting_inviting", "Caller invited to a meeting from a call"),
            both("phone.caller_mute", "Caller muted a call"),
            both("phone.caller_ringing", "Caller's call is ringing"),
            both("phone.caller_unhold", "Caller resumed a held call"),
            both("phone.caller_unmute", "Caller unmuted a call"),
            both("phone.device_registration", "Phone device registered"),
            both("phone.emergency_alert", "Emergency call alert"),
            both("phone.generic_device_provision", "Generic device provisioned"),
            both("phone.peering_number_cnam_updated", "Peering number CNAM updated"),
            both("phone.peering_number_emergency_address_updated", "Peering number emergency address updated"),
            both("phone.recording_completed", "Phone recording completed"),
            both("phone.recording_deleted", "Phone recording deleted"),
            both("phone.recording_paused", "Phone recording paused"),
            both("phone.recording_permanently_deleted", "Phone recording permanently deleted"),
            both("phone.recording_resumed", "Phone recording resumed"),
            both("phone.recording_started", "Phone recording started"),
            both("phone.recording_stopped", "Phone recording stopped"),
            both("phone.recording_transcript_completed", "Phone recording transcript completed"),
            both("phone.sms_received", "SMS received"),
            both("phone.sms_sent", "SMS sent"),
            both("phone.voicemail_deleted", "Voicemail deleted"),
            both("phone.voicemail_permanently_deleted", "Voicemail permanently deleted"),
            both("phone.voicemail_received", "Voicemail received"),
            both("phone.voicemail_transcript_completed", "Voicemail transcript completed"),
            both("phone.warm_transfer_accepted", "Warm transfer accepted"),
        ],
    },
    Family {
        names: "chat_message.*, chat_channel.*, team_chat.*",
        title: "Team Chat",
        cited: "Zoom Team Chat events reference (developers.zoom.us/docs/api/team-chat/events/, as snapshotted 2026-02-07: chat_message.*, chat_channel.*, team_chat.*); changelog Chat 2025-05-19 (team_chat.file_shared, team_chat.file_unshared)",
        rows: &[
            both("chat_message.sent", "Team Chat message sent"),
            both("chat_message.updated", "Team Chat message edited"),
            both("chat_message.deleted", "Team Chat message deleted"),
            both("chat_message.replied", "Team Chat message replied to"),
            both("chat_channel.created", "Team Chat channel created"),
            both("chat_channel.updated", "Team Chat channel updated"),
            both("chat_channel.deleted", "Team Chat channel deleted"),
            both("chat_channel.member_invited", "Member invited to a channel"),
            both("chat_channel.member_joined", "Member joined a channel"),
            both("chat_channel.member_left", "Member left a channel"),
            both("chat_channel.member_removed", "Member removed from a channel"),
            both("team_chat.file_shared", "File shared in Team Chat"),
            both("team_chat.file_unshared", "File unshared in Team Chat"),
            both("team_chat.bookmark_added", "Team Chat: bookmark added"),
            both("team_chat.bookmark_removed", "Team Chat: bookmark removed"),
            both("team_chat.channel_app_added", "Team Chat: channel app added"),
            both("team_chat.channel_app_removed", "Team Chat: channel app removed"),
            both("team_chat.channel_archived", "Team Chat: channel archived"),
            both("team_chat.channel_invitation_accepted", "Team Chat: channel invitation accepted"),
            both("team_chat.channel_invitation_approval_requested", "Team Chat: channel invitation approval requested"),
            both("team_chat.channel_invitation_approved", "Team Chat: channel invitation approved"),
            both("team_chat.channel_invitation_created", "Team Chat: channel invitation created"),
            both("team_chat.channel_invitation_declined", "Team Chat: channel invitation declined"),
            both("team_chat.channel_invitation_rejected", "Team Chat: channel invitation rejected"),
            both("team_chat.channel_invitation_removed", "Team Chat: channel invitation removed"),
            both("team_chat.channel_join_approval_requested", "Team Chat: channel join approval requested"),
            both("team_chat.channel_join_approved", "Team Chat: channel join approved"),
            both("team_chat.channel_join_declined", "Team Chat: channel join declined"),
            both("team_chat.channel_join_requested", "Team Chat: channel join requested"),
            both("team_chat.channel_message_deleted", "Team Chat: channel message deleted"),
            both("team_chat.channel_message_posted", "Team Chat: channel message posted"),
            both("team_chat.channel_message_updated", "Team Chat: channel message updated"),
            both("team_chat.channel_pin_added", "Team Chat: channel pin added"),
            both("team_chat.channel_pin_removed", "Team Chat: channel pin removed"),
            both("team_chat.channel_reaction_added", "Team Chat: channel reaction added"),
            both("team_chat.channel_reaction_removed", "Team Chat: channel reaction removed"),
            both("team_chat.channel_unarchived", "Team Chat: channel unarchived"),
            both("team_chat.dm_message_deleted", "Team Chat: dm message deleted"),
            both("team_chat.dm_message_posted", "Team Chat: dm message posted"),
            both("team_chat.dm_message_updated", "Team Chat: dm message updated"),
            both("team_chat.dm_reaction_added", "Team Chat: dm reaction added"),
            both("team_chat.dm_reaction_removed", "Team Chat: dm reaction removed"),
            both("team_chat.emoji_added", "Team Chat: emoji added"),
            both("team_chat.emoji_removed", "Team Chat: emoji removed"),
            both("team_chat.file_changed", "Team Chat: file changed"),
            both("team_chat.file_deleted", "Team Chat: file deleted"),
            both("team_chat.file_downloaded", "Team Chat: file downloaded"),
            both("team_chat.file_uploaded", "Team Chat: file uploaded"),
            both("team_chat.shared_spaces_edited", "Team Chat: shared spaces edited"),
            both("team_chat.shared_spaces_member_invited", "Team Chat: shared spaces member invited"),
            both("team_chat.shared_spaces_member_left", "Team Chat: shared spaces member left"),
            both("team_chat.shared_spaces_member_removed", "Team Chat: shared spaces member removed"),
            both("team_chat.starred", "Team Chat: starred"),
            both("team_chat.unstarred", "Team Chat: unstarred"),
        ],
    },
    Family {
        names: "zoomroom.*",
        title: "Zoom Rooms (account-level only)",
        cited: "Zoom Rooms events reference (developers.zoom.us/docs/api/rooms/events/, as snapshotted 2026-02-07); changelog Rooms 2022-09-19 (alert, delayed_alert), 2023-08-21 (created, updated, deleted)",
        rows: &[
            admin("zoomroom.alert", "Zoom Room alert"),
            admin("zoomroom.delayed_alert", "Zoom Room alert still unresolved"),
            admin("zoomroom.checked_in", "Zoom Room checked in"),
            admin("zoomroom.checked_out", "Zoom Room checked out"),
            admin("zoomroom.created", "Zoom Room created"),
            admin("zoomroom.updated", "Zoom Room updated"),
            admin("zoomroom.deleted", "Zoom Room deleted"),
            admin("zoomroom.digital_signage_app_started", "Digital signage app started"),
            admin("zoomroom.digital_signage_app_ended", "Digital signage app ended"),
            admin("zoomroom.location_created", "Zoom Rooms location created"),
            admin("zoomroom.location_updated", "Zoom Rooms location updated"),
            admin("zoomroom.location_deleted", "Zoom Rooms location deleted"),
            admin("zoomroom.sensor_data", "Zoom Room sensor data"),
            admin("zoomroom.thirdparty_meeting_attempted", "Third-party meeting attempted in a Zoom Room"),
        ],
    },
    Family {
        names: "user.*",
        title: "User events since the seed",
        cited: "Zoom Users events reference (developers.zoom.us/docs/api/users/events/, as snapshotted 2026-02-07: presence_status_updated, personal_notes_updated)",
        rows: &[
            both("user.presence_status_updated", "A user's presence status changed"),
            both("user.personal_notes_updated", "A user's personal note changed"),
        ],
    },
];
