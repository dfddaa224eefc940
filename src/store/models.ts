import { DataTypes, Model, type InferAttributes, type InferCreationAttributes, type Sequelize, type CreationOptional } from 'sequelize';

// Column lists mirror migrations/; the migrations own the schema (indexes, constraints, triggers).

export class Person extends Model<InferAttributes<Person>, InferCreationAttributes<Person>> {
  declare id: CreationOptional<string>;
  declare id_number_hash: string;
  declare id_number_enc: string;
  declare name_enc: string;
  declare key_id: string;
  declare created_at: Date;
}

export class Card extends Model<InferAttributes<Card>, InferCreationAttributes<Card>> {
  declare id: string;
  declare card_hash: string;
  declare card_enc: string;
  declare mobile_enc: string;
  declare key_id: string;
  declare person_id: string;
  declare masked: string;
  declare open_bank: string;
  declare bank_card_type: number;
  declare bank_address: string | null;
  declare agreement_no: string;
  declare created_at: Date;
}

export class Binding extends Model<InferAttributes<Binding>, InferCreationAttributes<Binding>> {
  declare id: CreationOptional<string>;
  declare channel: string;
  declare user_id: string;
  declare card_id: string;
  declare created_at: Date;
  declare confirmed_at: Date;
}

export class Verification extends Model<InferAttributes<Verification>, InferCreationAttributes<Verification>> {
  declare id: CreationOptional<string>;
  declare channel: string;
  declare user_id: string;
  declare card_hash: string;
  declare details_hash: string;
  declare id_number_hash: string;
  declare mobile_hash: string;
  declare generation: CreationOptional<number>;
  declare auth_status: CreationOptional<'APPROVED' | 'REJECTED' | null>;
  declare code_seq: CreationOptional<number>;
  declare code_hash: CreationOptional<string | null>;
  declare code_expires_at: CreationOptional<Date | null>;
  declare code_sent_at: CreationOptional<Date | null>;
  declare code_attempts: CreationOptional<number>;
  declare code_tried: CreationOptional<string[]>;
  declare code_verified_at: CreationOptional<Date | null>;
  declare bound_card_id: CreationOptional<string | null>;
  declare busy_until: CreationOptional<Date | null>;
  declare created_at: Date;
  declare updated_at: Date;
}

export class SmsSend extends Model<InferAttributes<SmsSend>, InferCreationAttributes<SmsSend>> {
  declare id: CreationOptional<string>;
  declare mobile_hash: string;
  declare card_hash: string;
  declare sent_at: Date;
}

export class AuditEvent extends Model<InferAttributes<AuditEvent>, InferCreationAttributes<AuditEvent>> {
  declare id: CreationOptional<string>;
  declare at: Date;
  declare channel: string;
  declare user_id: string;
  declare event: string;
  declare card_masked: string | null;
  declare card_id: string | null;
  declare result_code: number;
  declare sub_code: string | null;
}

// Sequelize writes into attribute objects, so each column gets a fresh one.
const text = () => ({ type: DataTypes.TEXT, allowNull: false });
const optText = () => ({ type: DataTypes.TEXT, allowNull: true });
const time = () => ({ type: DataTypes.DATE, allowNull: false });
const optTime = () => ({ type: DataTypes.DATE, allowNull: true });
const int = () => ({ type: DataTypes.INTEGER, allowNull: false });
const serial = () => ({ type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true });
const opts = (sequelize: Sequelize, tableName: string) => ({ sequelize, tableName, timestamps: false });

export function defineModels(sequelize: Sequelize): void {
  Person.init(
    { id: serial(), id_number_hash: text(), id_number_enc: text(), name_enc: text(), key_id: text(), created_at: time() },
    opts(sequelize, 'persons'),
  );
  Card.init(
    {
      id: { type: DataTypes.TEXT, primaryKey: true }, card_hash: text(), card_enc: text(), mobile_enc: text(), key_id: text(),
      person_id: { type: DataTypes.BIGINT, allowNull: false }, masked: text(), open_bank: text(), bank_card_type: int(),
      bank_address: optText(), agreement_no: text(), created_at: time(),
    },
    opts(sequelize, 'cards'),
  );
  Binding.init(
    { id: serial(), channel: text(), user_id: text(), card_id: text(), created_at: time(), confirmed_at: time() },
    opts(sequelize, 'bindings'),
  );
  Verification.init(
    {
      id: serial(), channel: text(), user_id: text(), card_hash: text(), details_hash: text(), id_number_hash: text(), mobile_hash: text(),
      generation: int(), auth_status: optText(), code_seq: int(),
      code_hash: optText(), code_expires_at: optTime(), code_sent_at: optTime(), code_attempts: int(),
      code_tried: { type: DataTypes.ARRAY(DataTypes.TEXT), allowNull: false }, code_verified_at: optTime(),
      bound_card_id: optText(), busy_until: optTime(), created_at: time(), updated_at: time(),
    },
    opts(sequelize, 'verifications'),
  );
  SmsSend.init({ id: serial(), mobile_hash: text(), card_hash: text(), sent_at: time() }, opts(sequelize, 'sms_sends'));
  AuditEvent.init(
    {
      id: serial(), at: time(), channel: text(), user_id: text(), event: text(), card_masked: optText(), card_id: optText(),
      result_code: int(), sub_code: optText(),
    },
    opts(sequelize, 'audit_events'),
  );
}
